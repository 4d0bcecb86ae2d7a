/* Signup form, progressive enhancement: without this file the form posts and the
   service answers with a page. With it, the answer (JSON, in French) appears in
   place of the form. No cookie, no storage, no other site. */
(function () {
  "use strict";

  function resultBox(form) {
    var box = form.parentElement && form.parentElement.querySelector(".signup-result");
    return box || document.querySelector(".signup-result");
  }

  function show(box, text, isError) {
    if (!box) { return; }
    box.textContent = text;
    box.classList.toggle("is-error", !!isError);
    box.classList.toggle("is-ok", !isError);
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.signup") || !window.fetch) { return; }
    event.preventDefault();
    var box = resultBox(form);
    var button = form.querySelector("button[type=submit], button:not([type])");
    var body = new URLSearchParams(new FormData(form));
    if (button) { button.disabled = true; }
    form.setAttribute("aria-busy", "true");
    show(box, "Envoi en cours…", false);

    fetch(form.action, {
      method: "POST",
      body: body,
      headers: { "Accept": "application/json" },
      credentials: "omit",
      referrerPolicy: "no-referrer"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) {
          show(box, data.message || "C’est noté\u202f: vérifiez votre boîte mail.", false);
          form.hidden = true;
          form.removeAttribute("aria-busy");
        } else {
          show(box, data.erreur || "L’inscription n’a pas abouti. Réessayez dans un instant.", true);
          restore(form, button);
        }
      });
    }).catch(function () {
      show(box, "Impossible de joindre le serveur. Vérifiez votre connexion et réessayez.", true);
      restore(form, button);
    });
  }

  function restore(form, button) {
    form.hidden = false;
    form.removeAttribute("aria-busy");
    if (button) { button.disabled = false; }
    var field = form.querySelector("input[name=email]");
    if (field) { field.focus(); }
  }

  document.addEventListener("submit", onSubmit);
})();
