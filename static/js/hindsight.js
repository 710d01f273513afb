/* Every page: small behaviour of the page frame (base.html). */
(function () {
  "use strict";

  // Signing out forgets this person's unsaved drafts kept by static/js/authoring.js on this browser.
  document.querySelectorAll("form[data-sign-out]").forEach(function (form) {
    form.addEventListener("submit", function () {
      try {
        const prefix = "hindsight:" + form.dataset.signOut + ":";
        Object.keys(localStorage)
          .filter(function (key) { return key.startsWith(prefix); })
          .forEach(function (key) { localStorage.removeItem(key); });
      } catch (error) {
        /* no storage: nothing kept */
      }
    });
  });
})();
