# Latchkey in a container (docs/operations.md, "Container image"), from the official .NET images.
#   docker build -t latchkey .
#   docker run -p 8080:8080 -v latchkey-data:/data -v latchkey-keys:/keys latchkey
# The image runs as the images' unprivileged "app" user; data (SQLite) in /data, the vault's master
# key file in /keys (a volume of its own, or a mounted secret), settings as LATCHKEY_* variables.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
# The release build of scripts/release.sh: self-contained, compiled ahead of time (ReadyToRun, composite).
RUN dotnet publish src/Latchkey/Latchkey.csproj -c Release -r linux-x64 --self-contained true \
      -p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true -o /out

# Self-contained: the runtime dependencies (ICU, OpenSSL, tzdata) are all it needs.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0
WORKDIR /data
COPY --from=build /out /opt/latchkey
ENV DOTNET_ENVIRONMENT=Production \
    ASPNETCORE_ENVIRONMENT=Production \
    ASPNETCORE_URLS=http://+:8080 \
    LATCHKEY_Storage__SqlitePath=/data/latchkey.db \
    LATCHKEY_Vault__KeyFile=/keys/vault-master-keys.json
RUN mkdir -p /data /keys && chown "$APP_UID" /data /keys && chmod 0700 /data /keys
USER $APP_UID
VOLUME ["/data", "/keys"]
EXPOSE 8080
ENTRYPOINT ["/opt/latchkey/latchkey"]
CMD ["serve"]
