// Small progressive enhancements; every page works without them.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Ask before destructive actions marked with data-confirm.
  document.querySelectorAll("[data-confirm]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });

  // A <select data-navigate> whose option values are URLs opens the chosen one.
  document.querySelectorAll("select[data-navigate]").forEach((select) => {
    select.addEventListener("change", () => { window.location.href = select.value; });
  });

  // "Back" on the error pages: a button, since a javascript: link is inline script the CSP refuses.
  document.querySelectorAll("[data-history-back]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => { window.history.back(); });
  });

  // A form sent back with errors: bring the first field in error into view and put the cursor in it, so that the
  // message is where the eye is, not far below a long page (the flash at the top says what happened).
  const firstError = document.querySelector(".field.has-error input, .field.has-error select, .field.has-error textarea");
  if (firstError) {
    firstError.scrollIntoView({ block: "center" });
    firstError.focus({ preventScroll: true });
  }

  // A posted form's buttons are disabled while the server works (审定 renders and signs a PDF, an import reads every
  // row): a second click would post twice. Disabled after the submit event, so the clicked button's name and value
  // are still sent; enabled again after 20 s in case the answer was a download that leaves the page in place.
  document.querySelectorAll('form[method="post"], form[method="POST"]').forEach((form) => {
    form.addEventListener("submit", () => {
      const buttons = form.querySelectorAll('button[type="submit"], button:not([type]), input[type="submit"]');
      window.setTimeout(() => {
        buttons.forEach((button) => { button.disabled = true; });
        form.setAttribute("aria-busy", "true");
      }, 0);
      window.setTimeout(() => {
        buttons.forEach((button) => { button.disabled = false; });
        form.removeAttribute("aria-busy");
      }, 20000);
    });
  });

  // Filter long <select> lists (hundreds of units) by typed text.
  document.querySelectorAll("input.select-filter").forEach((input) => {
    const select = document.getElementById(input.dataset.for);
    if (!select) return;
    input.addEventListener("input", () => {
      const needle = input.value.trim();
      let firstMatch = null;
      for (const option of select.options) {
        const show = !needle || option.value === "" || option.text.includes(needle);
        option.hidden = !show;
        if (show && option.value !== "" && firstMatch === null) firstMatch = option;
      }
      if (needle && firstMatch && (select.selectedOptions.length === 0 || select.selectedOptions[0].hidden)) {
        select.value = firstMatch.value;
      }
    });
  });
});
