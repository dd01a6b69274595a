// Passkeys (WebAuthn) for the console. No inline script (CSP): pages mark what needs this
// with data-* attributes, and the server does every check. The browser's part:
//
// - <form data-passkey-register data-options-url="…"> (a name input and a hidden
//   "credential" input): on submit, fetch creation options, let the browser create the
//   passkey, put its JSON in "credential", then submit the form for real.
// - <button data-passkey-get data-options-url="…" data-form="#id">: fetch request options,
//   let the browser get an assertion, put its JSON in the form's hidden "passkey" input and
//   submit that form (sign-in with a passkey, second factor, confirmation).
//
// Options are fetched with a POST carrying the CSRF token of <body hx-headers>; the server
// keeps the challenge and checks the answer against it once.
(function () {
  "use strict";

  if (!window.PublicKeyCredential || !navigator.credentials) return;
  document.documentElement.classList.add("webauthn");

  function toBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withBytes(descriptors) {
    return (descriptors || []).map(function (descriptor) {
      return Object.assign({}, descriptor, { id: toBytes(descriptor.id) });
    });
  }

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: withBytes(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      allowCredentials: withBytes(json.allowCredentials),
    });
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      out.response.attestationObject = toBase64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toBase64url(response.authenticatorData);
      out.response.signature = toBase64url(response.signature);
      out.response.userHandle = response.userHandle ? toBase64url(response.userHandle) : null;
    }
    return out;
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function fetchOptions(url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("options " + response.status);
      return response.json();
    });
  }

  function showError(near, message) {
    var scope = near.closest("[data-passkey-scope]") || near.closest("form") || document;
    var box = scope.querySelector("[data-passkey-error]");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }

  function failed(near, error) {
    var cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
    showError(
      near,
      cancelled
        ? "The passkey request was cancelled or timed out. Try again, or use another way."
        : "The passkey could not be used here. Try again, or use another way."
    );
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-passkey-register")) return;
    var input = form.querySelector("input[name=credential]");
    var name = form.querySelector("input[name=name]");
    if (!input || input.value || (name && !name.value.trim())) return; // the server explains
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    fetchOptions(form.getAttribute("data-options-url"))
      .then(function (options) {
        return navigator.credentials.create({ publicKey: creationOptions(options.publicKey) });
      })
      .then(function (credential) {
        input.value = JSON.stringify(credentialJSON(credential));
        form.submit();
      })
      .catch(function (error) {
        if (button) button.disabled = false;
        failed(form, error);
      });
  });

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-passkey-get]") : null;
    if (!button) return;
    event.preventDefault();
    var form = document.querySelector(button.getAttribute("data-form"));
    var input = form && form.querySelector("input[name=passkey]");
    if (!input) return;
    button.disabled = true;
    fetchOptions(button.getAttribute("data-options-url"))
      .then(function (options) {
        return navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
      })
      .then(function (credential) {
        input.value = JSON.stringify(credentialJSON(credential));
        form.submit();
      })
      .catch(function (error) {
        button.disabled = false;
        failed(button, error);
      });
  });
})();
