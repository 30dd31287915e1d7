// The only script. "Copy" buttons next to secrets shown once: without it the secret can still be selected and copied.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    const range = document.createRange();
    range.selectNodeContents(source);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
});

// Passkeys: a form marked data-passkey="create" or "get" first asks the server for the options
// (data-options-url, with the form's antiforgery token), then the browser for a passkey, puts the
// browser's answer in the form's "credential" field and sends the form. Without script, or in a
// browser without passkeys, the form says so and nothing is sent.
document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-passkey]");
  if (!form) return;
  event.preventDefault();
  const status = form.querySelector("[data-passkey-status]");
  const say = (text) => { if (status) status.textContent = text; };
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) {
    say("This browser cannot use passkeys. Use an up-to-date browser, or your password.");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  say("");
  try {
    const body = new FormData();
    body.append("__RequestVerificationToken", form.querySelector("input[name=__RequestVerificationToken]").value);
    const response = await fetch(form.dataset.optionsUrl, { method: "POST", body, credentials: "same-origin" });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const options = await response.json();
    const credential = form.dataset.passkey === "create"
      ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
      : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
    form.querySelector("input[name=credential]").value = JSON.stringify(credential);
    form.submit();
  } catch (error) {
    button.disabled = false;
    say(error.name === "NotAllowedError"
      ? "No passkey was used: it was cancelled, or timed out."
      : error.name === "InvalidStateError"
        ? "This device already holds a passkey for your account."
        : `The passkey could not be used: ${error.message}`);
  }
});
