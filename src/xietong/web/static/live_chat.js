// Live conversation on a subject's page (progressive enhancement; docs/messaging.md).
//
// Without this script the page polls every 5 s and the form posts. With it, a WebSocket to
// /ws follows the conversation: a pushed message makes the page fetch what is new at once
// (the server renders messages, escaped and translated, in one place), polling pauses while
// the socket is up, a text-only message is sent over the socket (same client id as the form,
// so a resend after a drop makes no second message), and typing and who is here are shown.
// The socket reconnects with backoff; on each reconnect the page catches up by polling.

const section = document.querySelector("[data-conversation]");

if (section && "WebSocket" in window) {
  const key = section.dataset.conversation;
  const form = section.querySelector("form.message-form");
  const status = section.querySelector("#live-status");
  const typingEl = status?.querySelector(".live-typing");
  const onlineEl = status?.querySelector(".live-online");
  const here = new Map(); // connection id -> {user_id, name}
  let socket = null;
  let subscribed = false;
  let backoff = 1000;
  let lastTyping = 0;
  let typingTimer = null;
  let myUserId = null;
  const pending = new Map(); // request id -> form client id

  const catchUp = () => document.body.dispatchEvent(new CustomEvent("xt-message"));

  function showOnline() {
    if (!onlineEl) return;
    const names = [...new Set([...here.values()].filter((p) => p.user_id !== myUserId).map((p) => p.name))];
    onlineEl.textContent = names.length ? `${section.dataset.onlineLabel} ${names.join("、")}` : "";
    status.hidden = !names.length && !typingEl.textContent;
  }

  function showTyping(name) {
    if (!typingEl) return;
    typingEl.textContent = section.dataset.typingLabel.replace("{name}", name);
    status.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      typingEl.textContent = "";
      showOnline();
    }, 4000);
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function formError(message) {
    let box = form.querySelector(".live-error");
    if (!box) {
      box = document.createElement("p");
      box.className = "form-error live-error";
      box.setAttribute("role", "alert");
      form.prepend(box);
    }
    box.textContent = message;
  }

  function handle(frame) {
    switch (frame.type) {
      case "hello":
        myUserId = frame.user_id;
        send({ type: "subscribe", conversation: key, id: "sub" });
        break;
      case "subscribed":
        subscribed = true;
        window.xtLive = true;
        section.dataset.live = "connected";
        backoff = 1000;
        catchUp(); // whatever came while we were away
        break;
      case "message":
        catchUp();
        break;
      case "posted": {
        const clientId = pending.get(frame.id);
        pending.delete(frame.id);
        const field = form?.querySelector("input[name=client_id]");
        if (form && field && field.value === clientId) {
          form.querySelector("textarea[name=text]").value = "";
          field.value = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());
          form.querySelector(".live-error")?.remove();
        }
        break;
      }
      case "typing":
        showTyping(frame.name);
        break;
      case "presence":
        if (frame.state === "online") here.set(frame.connection, frame);
        else here.delete(frame.connection);
        showOnline();
        break;
      case "notification":
        // The top bar's bell (live_bell.js stays idle on this page).
        document.body.dispatchEvent(new CustomEvent("xt-notification"));
        break;
      case "unsubscribed":
        subscribed = false;
        window.xtLive = false;
        break;
      case "error":
        if (frame.id && pending.has(frame.id) && form) {
          pending.delete(frame.id);
          formError(frame.message);
        }
        break;
      default:
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws`);
    socket.addEventListener("message", (event) => {
      try {
        handle(JSON.parse(event.data));
      } catch (err) {
        console.error(err);
      }
    });
    socket.addEventListener("close", () => {
      subscribed = false;
      window.xtLive = false;
      section.dataset.live = "offline";
      here.clear();
      showOnline();
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    });
  }

  // Beside a video call the page must not reload (the call would drop): a photo or PDF
  // goes up by fetch instead of by navigation, and the message arrives by the push.
  async function upload() {
    // Sent, the server redirects back to the page: no need to fetch that page again.
    const answer = await fetch(form.action, { method: "POST", body: new FormData(form), redirect: "manual" });
    if (answer.type === "opaqueredirect" || answer.ok) {
      form.reset();
      const field = form.querySelector("input[name=client_id]");
      field.value = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());
      form.querySelector(".live-error")?.remove();
      catchUp();
      return;
    }
    // The refusal is a page with the form's error in it: show that error here.
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    formError(page.querySelector("#form-message [role=alert]")?.textContent || answer.statusText);
  }

  if (form) {
    const text = form.querySelector("textarea[name=text]");
    form.addEventListener("submit", (event) => {
      const file = form.querySelector("input[type=file]");
      const hasFile = file && file.files && file.files.length > 0;
      if (hasFile && section.dataset.keepPage !== undefined) {
        event.preventDefault();
        upload().catch(() => formError(section.dataset.uploadFailedLabel));
        return;
      }
      if (!subscribed || hasFile || !text.value.trim()) return; // the form posts as before
      const clientId = form.querySelector("input[name=client_id]").value;
      const id = `post-${clientId}`;
      if (send({ type: "post", conversation: key, text: text.value, client_id: clientId, id })) {
        event.preventDefault();
        pending.set(id, clientId);
      }
    });
    text?.addEventListener("input", () => {
      const now = Date.now();
      if (subscribed && now - lastTyping > 2000) {
        lastTyping = now;
        send({ type: "typing", conversation: key });
      }
    });
  }

  connect();
}
