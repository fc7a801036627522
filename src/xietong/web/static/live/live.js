// The video session page: camera and microphone preview, join and leave, mute, camera
// off, screen share, participants, active speaker and the lobby; signaling over /ws
// (docs/live.md). Everything is served from /static: nothing is fetched elsewhere.
import { Mesh } from "./mesh.js";
import { Sfu } from "./sfu.js";
import { Socket } from "./socket.js";
import { Speakers } from "./speaker.js";

const app = document.getElementById("live-app");
const labels = JSON.parse(document.getElementById("live-labels").textContent);
const sessionId = Number(app.dataset.session);
const link = app.dataset.link || null;
const $ = (id) => document.getElementById(id);
const status = $("call-status");
const grid = $("live-grid");
const preview = $("live-preview");
const buttons = {
  join: $("live-join"),
  mute: $("live-mute"),
  camera: $("live-camera"),
  screen: $("live-screen"),
  leave: $("live-leave"),
  end: $("live-end"),
};

const state = {
  socket: null,
  mesh: null,
  me: null,
  host: false,
  camera: null, // the camera+microphone stream
  screen: null, // the display stream while sharing
  muted: false,
  cameraOff: false,
  people: new Map(), // peer -> {name, muted, camera_off}
};
const speakers = new Speakers();
// A dropped socket (network change, server restart) joins again by itself, with backoff,
// until the person leaves or the session ends: the others see them leave and come back,
// and the media is negotiated afresh.
const SESSION_ENDED = 4401; // signed out or revoked: joining again would be refused
const rejoin = { wanted: false, backoff: 1000 };

function say(text) {
  status.textContent = text;
}

function setJoined(joined) {
  buttons.join.disabled = joined;
  for (const key of ["mute", "camera", "screen", "leave", "end"]) {
    if (buttons[key]) buttons[key].disabled = !joined;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) buttons.screen.hidden = true;
}

async function startPreview() {
  try {
    state.camera = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 640 }, height: { ideal: 360 } },
    });
    preview.srcObject = state.camera;
    speakers.watch("local", state.camera, $("tile-local"));
  } catch {
    say(labels.no_camera);
  }
}

function tile(peer) {
  let figure = document.getElementById(`tile-${peer}`);
  if (figure) return figure;
  figure = document.createElement("figure");
  figure.className = "live-tile";
  figure.id = `tile-${peer}`;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute("playsinline", "");
  video.dataset.peer = peer;
  const caption = document.createElement("figcaption");
  figure.append(video, caption);
  grid.append(figure);
  return figure;
}

function renderPeople() {
  const list = $("live-people");
  list.replaceChildren();
  const me = document.createElement("li");
  me.textContent = `${labels.you}${state.muted ? ` (${labels.muted})` : ""}`;
  list.append(me);
  for (const [peer, person] of state.people) {
    const item = document.createElement("li");
    item.dataset.peer = peer;
    item.textContent = person.name + (person.muted ? ` (${labels.muted})` : "");
    list.append(item);
    const caption = tile(peer).querySelector("figcaption");
    caption.textContent = item.textContent;
  }
}

function renderLobby(waiting) {
  const section = $("live-lobby");
  const list = $("live-lobby-list");
  section.hidden = !state.host;
  list.replaceChildren();
  for (const person of waiting) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = person.name;
    const admit = document.createElement("button");
    admit.type = "button";
    admit.textContent = labels.admit;
    admit.addEventListener("click", () =>
      state.socket.send({ type: "live.admit", session: sessionId, user: person.user_id }),
    );
    const refuse = document.createElement("button");
    refuse.type = "button";
    refuse.textContent = labels.refuse;
    refuse.addEventListener("click", () =>
      state.socket.send({ type: "live.refuse", session: sessionId, user: person.user_id }),
    );
    item.append(name, admit, refuse);
    list.append(item);
  }
}

function addPeer(person) {
  state.people.set(person.peer, person);
  tile(person.peer);
  renderPeople();
}

function removePeer(peer) {
  state.people.delete(peer);
  state.mesh?.drop(peer);
  speakers.forget(peer);
  document.getElementById(`tile-${peer}`)?.remove();
  renderPeople();
}

function onTrack(peer, stream) {
  const figure = tile(peer);
  const video = figure.querySelector("video");
  if (video.srcObject !== stream) {
    video.srcObject = stream;
    video.play().catch(() => {});
  }
  speakers.watch(peer, stream, figure);
}

function sendState() {
  state.socket.send({
    type: "live.state",
    session: sessionId,
    muted: state.muted,
    camera_off: state.cameraOff,
    screen: Boolean(state.screen),
  });
  renderPeople();
}

async function onJoined(frame) {
  rejoin.backoff = 1000;
  state.me = frame.peer;
  state.host = frame.host;
  // A janus session publishes once to the SFU and receives a connection per feed; a mesh
  // session calls every peer. The page talks to either through the same interface.
  const Media = frame.mode === "janus" ? Sfu : Mesh;
  state.mesh = new Media({
    sessionId,
    send: (f) => state.socket.send(f),
    iceServers: frame.ice_servers,
    uploadKbps: frame.upload_kbps,
    onBudget: (kbps) => {
      app.dataset.sendKbps = String(kbps); // what each connection may send now
    },
    onTrack,
    onGone: (peer) => removePeer(peer),
  });
  state.mesh.setStream(state.camera);
  $("live-waiting").hidden = true;
  setJoined(true);
  say(labels.joined);
  for (const person of frame.peers) {
    addPeer(person);
    if (frame.mode !== "janus") await state.mesh.call(person.peer);
  }
  if (frame.mode === "janus") await state.mesh.publish();
  renderPeople();
}

const handlers = {
  "live.joined": onJoined,
  "live.waiting": () => {
    $("live-waiting").hidden = false;
    say(labels.waiting);
  },
  "live.admitted": () => {
    say(labels.admitted);
    join();
  },
  "live.refused": () => {
    rejoin.wanted = false;
    $("live-waiting").hidden = true;
    say(labels.refused);
  },
  "live.peer_joined": (frame) => addPeer(frame),
  "live.peer_left": (frame) => removePeer(frame.peer),
  "live.signal": (frame) => state.mesh?.receive(frame.from, frame.data, frame.feed),
  "live.state": (frame) => {
    const person = state.people.get(frame.peer);
    if (person) Object.assign(person, { muted: frame.muted, camera_off: frame.camera_off });
    renderPeople();
  },
  "live.lobby": (frame) => renderLobby(frame.waiting),
  "live.ended": () => {
    rejoin.wanted = false;
    hangUp();
    say(labels.ended);
    buttons.join.disabled = true;
  },
  error: (frame) => {
    say(labels.error.replace("{message}", frame.message));
    if (!state.me) {
      rejoin.wanted = false; // the join itself was refused (ended, not allowed)
      buttons.join.disabled = false;
    }
  },
};

function onFrame(frame) {
  const handler = handlers[frame.type];
  if (handler) Promise.resolve(handler(frame)).catch((error) => console.error(error));
}

function hangUp() {
  state.mesh?.close();
  state.mesh = null;
  for (const peer of [...state.people.keys()]) removePeer(peer);
  state.me = null;
  setJoined(false);
}

function onSocketClosed(code) {
  const wasJoined = Boolean(state.me);
  hangUp();
  state.socket = null;
  if (rejoin.wanted && code !== SESSION_ENDED) {
    say(labels.reconnecting);
    buttons.join.disabled = true;
    setTimeout(() => join().catch(() => say(labels.reconnecting)), rejoin.backoff);
    rejoin.backoff = Math.min(rejoin.backoff * 2, 30000);
  } else {
    rejoin.wanted = false;
    if (wasJoined) say(labels.disconnected);
  }
}

async function join() {
  buttons.join.disabled = true;
  rejoin.wanted = true;
  say(labels.joining);
  if (!state.socket) {
    state.socket = new Socket(onFrame, onSocketClosed);
    await state.socket.ready;
  }
  state.socket.send({ type: "live.join", session: sessionId, ...(link ? { link } : {}) });
}

buttons.join.addEventListener("click", () => join().catch(() => say(labels.disconnected)));
buttons.leave.addEventListener("click", () => {
  rejoin.wanted = false;
  state.socket?.send({ type: "live.leave", session: sessionId });
  hangUp();
  say(labels.left);
});
buttons.end?.addEventListener("click", () => state.socket?.send({ type: "live.end", session: sessionId }));
buttons.mute.addEventListener("click", () => {
  state.muted = !state.muted;
  for (const track of state.camera?.getAudioTracks() || []) track.enabled = !state.muted;
  buttons.mute.setAttribute("aria-pressed", String(state.muted));
  buttons.mute.textContent = state.muted ? labels.unmute : labels.mute;
  sendState();
});
buttons.camera.addEventListener("click", () => {
  state.cameraOff = !state.cameraOff;
  for (const track of state.camera?.getVideoTracks() || []) track.enabled = !state.cameraOff;
  buttons.camera.setAttribute("aria-pressed", String(state.cameraOff));
  buttons.camera.textContent = state.cameraOff ? labels.camera_on : labels.camera_off;
  sendState();
});

async function stopSharing() {
  if (!state.screen) return;
  for (const track of state.screen.getTracks()) track.stop();
  state.screen = null;
  const camera = state.camera?.getVideoTracks()[0] || null;
  await state.mesh?.replaceVideo(camera);
  preview.srcObject = state.camera;
  $("tile-local").classList.remove("screen");
  buttons.screen.setAttribute("aria-pressed", "false");
  buttons.screen.textContent = labels.share;
  sendState();
}

buttons.screen.addEventListener("click", async () => {
  if (state.screen) return stopSharing();
  try {
    state.screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
  } catch {
    return;
  }
  const track = state.screen.getVideoTracks()[0];
  track.addEventListener("ended", () => stopSharing());
  await state.mesh?.replaceVideo(track);
  preview.srcObject = state.screen;
  $("tile-local").classList.add("screen");
  buttons.screen.setAttribute("aria-pressed", "true");
  buttons.screen.textContent = labels.stop_share;
  sendState();
});

window.addEventListener("pagehide", () => {
  rejoin.wanted = false;
  state.socket?.close();
});
setJoined(false);
if (app.dataset.state === "ended" || app.dataset.state === "cancelled") {
  buttons.join.disabled = true;
  say(labels.ended);
} else {
  startPreview();
}
