using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace Latchkey.Features.Site;

public static class PageForms
{
    /// <summary>
    /// Puts a service's validation errors (keyed by the JSON API's field names) on the page's
    /// form fields, so each message shows next to its field; unknown fields go to the summary.
    /// </summary>
    public static void AddErrors(this ModelStateDictionary state, Dictionary<string, string[]> errors, IReadOnlyDictionary<string, string> fields)
    {
        foreach (var (field, messages) in errors)
        {
            var key = fields.GetValueOrDefault(field, "");
            foreach (var message in messages)
            {
                state.AddModelError(key, message);
            }
        }
    }
}
