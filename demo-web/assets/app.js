// The demo app's page: status strip, login and logout, the profile (users-service) and the
// orders (orders-service). Everything is built with DOM calls and textContent, never from HTML
// strings, so nothing a user typed can become markup. The ids are listed in index.html.

import * as oidc from "./oidc.js";

/** How often the status strip asks each binary's /readyz. */
const STATUS_INTERVAL_MS = 3000;

const byId = (id) => document.getElementById(id);

let config = null;

/** Shows the result of the last action; `kind` "error" marks a failure. */
function say(text, kind = "info") {
  const message = byId("message");
  message.textContent = text;
  message.dataset.kind = kind;
}

/** Shows what went wrong, in words: never a silent failure. */
function sayError(error) {
  if (error instanceof oidc.AuthServerUnreachable) {
    showOutage(true);
    say(
      "The auth server is unreachable: login and refresh wait for the auth server; your session keeps working until the token expires.",
      "error",
    );
  } else if (error instanceof oidc.SessionEnded) {
    showLoggedIn(false);
    say(error.message, "error");
  } else {
    say(error.message, "error");
  }
}

function showOutage(outage) {
  byId("outage").hidden = !outage;
}

function showLoggedIn(loggedIn) {
  byId("welcome").hidden = loggedIn;
  byId("session").hidden = !loggedIn;
}

/** A service's answer as an Error with its problem document's detail (RFC 9457). */
async function failure(service, response) {
  const problem = await response.json().catch(() => ({}));
  return new Error(`${service} answered ${response.status}: ${problem.detail ?? problem.title ?? response.statusText}`);
}

/** Calls a service; a network failure becomes a readable Error. */
async function call(service, url, options) {
  try {
    return await oidc.authorizedFetch(url, options);
  } catch (error) {
    if (error instanceof TypeError) {
      throw new Error(`${service} is unreachable (${error.message})`);
    }
    throw error;
  }
}

// ---- status strip ------------------------------------------------------------------------------

/** ready / degraded / unavailable from a binary's /readyz; a failed fetch is unavailable. */
async function readiness(baseUrl) {
  try {
    const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2500) });
    const body = await response.json();
    return ["ready", "degraded", "unavailable"].includes(body.status) ? body.status : "unavailable";
  } catch {
    return "unavailable";
  }
}

async function refreshStatus() {
  const targets = {
    "auth-server": config.issuer,
    "users-service": config.users_service_url,
    "orders-service": config.orders_service_url,
  };
  await Promise.all(
    Object.entries(targets).map(async ([service, url]) => {
      const state = await readiness(url);
      const item = document.querySelector(`#status [data-service="${service}"]`);
      item.dataset.state = state;
      item.querySelector(".state").textContent = state;
      if (service === "auth-server") {
        showOutage(state === "unavailable" && oidc.isLoggedIn());
      }
    }),
  );
}

// ---- profile and orders ------------------------------------------------------------------------

function showProfile(profile) {
  byId("profile-name").textContent = profile.display_name;
  byId("profile-username").textContent = profile.username;
}

async function loadProfile() {
  const response = await call("users-service", `${config.users_service_url}/v1/users/me`);
  if (!response.ok) {
    throw await failure("users-service", response);
  }
  showProfile(await response.json());
}

async function saveDisplayName(displayName) {
  const response = await call("users-service", `${config.users_service_url}/v1/users/me`, {
    method: "PATCH",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ display_name: displayName }),
  });
  if (!response.ok) {
    throw await failure("users-service", response);
  }
  showProfile(await response.json());
}

function orderItem(order) {
  const item = document.createElement("li");
  item.dataset.orderId = order.id;
  const when = new Date(order.created_at * 1000).toLocaleString();
  item.textContent = `${order.item} × ${order.quantity} (${when})`;
  return item;
}

async function loadOrders() {
  const response = await call("orders-service", `${config.orders_service_url}/v1/orders`);
  if (!response.ok) {
    throw await failure("orders-service", response);
  }
  const orders = await response.json();
  byId("orders").replaceChildren(...orders.map(orderItem));
}

async function createOrder(item, quantity) {
  const response = await call("orders-service", `${config.orders_service_url}/v1/orders`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ item, quantity }),
  });
  if (!response.ok) {
    throw await failure("orders-service", response);
  }
  const order = await response.json();
  byId("orders").prepend(orderItem(order));
  return order;
}

// ---- wiring ------------------------------------------------------------------------------------

/** Runs `action` with `button` disabled; shows its error, if any. */
async function withButton(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    sayError(error);
  } finally {
    button.disabled = false;
  }
}

function wireControls() {
  byId("login").addEventListener("click", (event) =>
    withButton(event.currentTarget, () => oidc.login()),
  );
  byId("logout").addEventListener("click", (event) =>
    withButton(event.currentTarget, () => oidc.logout()),
  );
  byId("display-name-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId("display-name-input");
    withButton(byId("save-display-name"), async () => {
      await saveDisplayName(input.value);
      input.value = "";
      say("Display name saved.");
    });
  });
  byId("order-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const item = byId("order-item");
    const quantity = byId("order-quantity");
    withButton(byId("create-order"), async () => {
      const order = await createOrder(item.value, Number(quantity.value));
      item.value = "";
      say(`Order created: ${order.item} × ${order.quantity}.`);
    });
  });
}

/** After login: show the session and load what it shows. */
async function enterSession() {
  showLoggedIn(true);
  try {
    const key = await oidc.dpopKey();
    byId("dpop-thumbprint").textContent = key.thumbprint;
    byId("dpop-extractable").textContent = key.extractable ? "yes" : "no";
    await Promise.all([loadProfile(), loadOrders()]);
  } catch (error) {
    sayError(error);
  }
}

async function start() {
  config = await (await fetch("/config.json")).json();
  oidc.configure(config);
  wireControls();
  refreshStatus();
  setInterval(refreshStatus, STATUS_INTERVAL_MS);

  const query = new URLSearchParams(window.location.search);
  if (window.location.pathname === "/callback") {
    // The code and state leave the address bar (and the history) at once.
    window.history.replaceState(null, "", "/");
    try {
      if (await oidc.completeLogin(query)) {
        say("Logged in.");
        await enterSession();
      } else {
        showLoggedIn(false);
      }
    } catch (error) {
      showLoggedIn(false);
      sayError(error);
    }
    return;
  }
  if (query.has("state")) {
    window.history.replaceState(null, "", "/");
    if (oidc.completeLogout(query)) {
      say("You are logged out.");
    }
  }
  showLoggedIn(false);
  if (oidc.wasLoggedIn()) {
    // A reload forgot the in-memory tokens: log in again silently through the SSO session.
    try {
      await oidc.discover();
      await oidc.login({ silent: true });
    } catch (error) {
      sayError(error);
    }
  }
}

start().catch((error) => say(`The app could not start: ${error.message}`, "error"));
