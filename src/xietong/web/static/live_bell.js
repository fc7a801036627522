// The bell rings at once (docs/notifications.md): a socket to /ws hears of the signed-in
// user's new notifications ({"type": "notification"}, a nudge without content) and the
// badge refreshes through its usual HTTP fetch. Without the socket the badge polls every
// 60 s as before. Conversation pages already follow /ws (live_chat.js passes the nudge
// on), so they open no second socket here.

const BADGE = "notification-badge";
const SESSION_ENDED = 4401; // signed out, revoked or idle: the next page shows the login

const ring = () => document.body.dispatchEvent(new CustomEvent("xt-notification"));

if (
  document.getElementById(BADGE) &&
  "WebSocket" in window &&
  !document.querySelector("[data-conversation]")
) {
  let backoff = 2000;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws`);
    socket.addEventListener("message", (event) => {
      let frame = null;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "hello") {
        backoff = 2000;
        document.body.dataset.bell = "live";
      } else if (frame.type === "notification") {
        ring();
      }
    });
    socket.addEventListener("close", (event) => {
      delete document.body.dataset.bell;
      if (event.code === SESSION_ENDED) return;
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 300000);
    });
  }

  connect();
}
