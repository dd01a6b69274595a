// Small behaviours of the console. No inline scripts anywhere (CSP): everything is here,
// wired through data-* attributes with event delegation, so it also works on content that
// htmx swaps in later.
(function () {
  "use strict";

  // Lets the stylesheet show controls that need JavaScript (.js-only).
  document.documentElement.classList.add("js");

  function flashRegion() {
    return document.getElementById("flash");
  }

  function showFlash(message, category) {
    var region = flashRegion();
    if (!region) return;
    var box = document.createElement("div");
    box.className = "flash flash-" + (category || "info");
    var text = document.createElement("p");
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "flash-dismiss";
    close.setAttribute("data-dismiss-flash", "");
    close.setAttribute("aria-label", "Dismiss message");
    close.textContent = "×";
    box.appendChild(text);
    box.appendChild(close);
    region.replaceChildren(box);
  }

  var rowCounter = 1000;

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;

    // Dismiss a flash message.
    var dismiss = target.closest("[data-dismiss-flash]");
    if (dismiss) {
      var box = dismiss.closest(".flash");
      if (box) box.remove();
      return;
    }

    // Metadata: add a key/value row from the <template>.
    var add = target.closest("[data-metadata-add]");
    if (add) {
      var form = add.closest("form");
      var template = form && form.querySelector("#metadata-row-template");
      var rows = form && form.querySelector("[data-metadata-rows]");
      if (!template || !rows) return;
      rowCounter += 1;
      var html = template.innerHTML.split("__n__").join(String(rowCounter));
      var holder = document.createElement("template");
      holder.innerHTML = html.trim();
      var row = holder.content.firstElementChild;
      rows.appendChild(row);
      var firstInput = row.querySelector("input");
      if (firstInput) firstInput.focus();
      return;
    }

    // Metadata: remove a row (an empty form still submits fine: no rows, no metadata).
    var remove = target.closest("[data-metadata-remove]");
    if (remove) {
      var current = remove.closest("[data-metadata-row]");
      var list = current && current.parentElement;
      if (current) current.remove();
      var next = list && list.querySelector("[data-metadata-row] input");
      var adder = document.querySelector("[data-metadata-add]");
      if (next) next.focus();
      else if (adder) adder.focus();
    }
  });

  // Choosing a phone number fills in the send-from number (the server does the same when
  // the field is left empty, so this is a convenience, not a rule).
  document.addEventListener("change", function (event) {
    var select = event.target instanceof Element ? event.target.closest("[data-fills-number]") : null;
    if (!select) return;
    var field = document.querySelector(select.getAttribute("data-fills-number"));
    var option = select.selectedOptions && select.selectedOptions[0];
    if (field && option) field.value = option.getAttribute("data-number") || "";
  });

  // An htmx request that failed (403, 404, 500, ...): say so in the flash region instead of
  // failing silently. The console's error page is a bare message for htmx requests.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    var message = "The request failed. Reload the page and try again.";
    if (xhr && xhr.responseText) {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var found = doc.querySelector(".error-message");
      if (found && found.textContent.trim()) message = found.textContent.trim();
    }
    showFlash(message, "error");
  });

  // Copy buttons: data-copy="#id" copies that element's text (DNS records, a new API key).
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.firstChild;
      var before = label.textContent;
      label.textContent = "Copied";
      button.setAttribute("data-copied", "");
      setTimeout(function () { label.textContent = before; button.removeAttribute("data-copied"); }, 2000);
    }, function () {
      showFlash("Copying failed: select the text and copy it by hand.", "error");
    });
  });

  // Switches (the channel type, an integration's type and provider): a <select data-switch>
  // whose fields live in the element named by data-switch, which carries the value it was
  // rendered for in the attribute named by data-switch-attr.
  // - A choice made before htmx was ready (or restored by the back button) fired no request:
  //   whenever htmx has processed content or finished a request, each switch whose fields are
  //   not for its current value asks for them (once per value).
  // - A late answer never overwrites a newer choice: the selects queue their requests
  //   (hx-sync "queue last"), and an answer for another value than the select's is not swapped.
  function switchOutOfStep(select) {
    var fields = document.querySelector(select.getAttribute("data-switch"));
    var attr = select.getAttribute("data-switch-attr");
    return Boolean(fields && attr && fields.getAttribute(attr) !== select.value);
  }

  function reconcileSwitches() {
    if (!window.htmx) return;
    document.querySelectorAll("select[data-switch]").forEach(function (select) {
      if (select.classList.contains("htmx-request")) return;  // its answer is on the way
      if (!switchOutOfStep(select)) {
        select.removeAttribute("data-switch-asked");
        return;
      }
      if (select.getAttribute("data-switch-asked") === select.value) return;
      select.setAttribute("data-switch-asked", select.value);
      window.htmx.trigger(select, "change");
    });
  }

  document.addEventListener("htmx:load", reconcileSwitches);
  document.addEventListener("htmx:afterRequest", function () {
    setTimeout(reconcileSwitches, 0);  // once htmx has ended the request (and sent a queued one)
  });
  document.addEventListener("pageshow", reconcileSwitches);

  document.addEventListener("htmx:beforeSwap", function (event) {
    var config = event.detail.requestConfig;
    var select = config && config.elt;  // the element whose request this answers
    if (!(select instanceof HTMLSelectElement) || !select.hasAttribute("data-switch")) return;
    var attr = select.getAttribute("data-switch-attr");
    var doc = new DOMParser().parseFromString(event.detail.serverResponse || "", "text/html");
    var incoming = doc.body.firstElementChild;
    if (!select.isConnected || !incoming || incoming.getAttribute(attr) !== select.value) {
      event.detail.shouldSwap = false;  // an answer for an earlier choice
    }
  });

  // A form is never submitted with one value's fields under another value: the submit waits
  // for the right fields (the server refuses such a submit too, and shows the right fields).
  document.addEventListener("submit", function (event) {
    var form = event.target instanceof HTMLFormElement ? event.target : null;
    if (!form || !window.htmx) return;
    var stale = Array.prototype.filter.call(form.querySelectorAll("select[data-switch]"), switchOutOfStep);
    if (!stale.length) return;
    event.preventDefault();
    stale.forEach(function (select) {
      select.removeAttribute("data-switch-asked");
    });
    reconcileSwitches();
    showFlash("The form was still showing the fields of another choice. Check the fields and submit again.", "error");
  });

  document.addEventListener("htmx:sendError", function () {
    showFlash("The server could not be reached. Check your connection and try again.", "error");
  });
})();
