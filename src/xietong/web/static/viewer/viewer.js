// The image viewer page: series thumbnails, a stack (or axial, coronal and sagittal planes
// with MIP) drawn with canvas 2D through a window/level table, and the tools. The state
// the browser tests read is mirrored on #viewer's data attributes.
import { Volume } from "./volume.js";

const root = document.getElementById("viewer");
const labels = JSON.parse(document.getElementById("viewer-labels").textContent);
const format = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
const VIEWS = ["axial", "coronal", "sagittal"];
const CT_WINDOW = [40, 400];

const state = {
  manifest: null,
  volume: null,
  abort: null,
  index: 0, // axial slice
  row: 0, // coronal plane (image row)
  col: 0, // sagittal plane (image column)
  center: 40,
  width: 400,
  invert: false,
  layout: "stack",
  mip: false,
  mode: "scroll",
  active: "axial",
  measures: [],
  pending: null, // an angle waiting for its third point
  cine: null,
  firstDrawn: false,
};

const views = {};
for (const name of VIEWS) {
  const pane = root.querySelector(`.viewer-pane[data-view="${name}"]`);
  const canvas = pane.querySelector("canvas");
  views[name] = {
    name,
    pane,
    canvas,
    ctx: canvas.getContext("2d"),
    info: pane.querySelector(".viewer-info"),
    image: document.createElement("canvas"),
    plane: null,
    zoom: 1,
    panX: 0,
    panY: 0,
  };
}

// State on the page ------------------------------------------------------------------------

function publish() {
  const d = root.dataset;
  d.slice = String(state.index);
  d.row = String(state.row);
  d.col = String(state.col);
  d.wc = String(Math.round(state.center));
  d.ww = String(Math.round(state.width));
  d.invert = String(state.invert);
  d.layout = state.layout;
  d.mip = String(state.mip);
  d.mode = state.mode;
  d.zoom = views.axial.zoom.toFixed(3);
  const slider = document.getElementById("viewer-slider");
  slider.value = String(state.index);
  followTags();
}

// An open tag panel follows the current image, once scrolling pauses.
let tagsTimer = null;
function followTags() {
  const slice = state.volume && state.volume.series.slices[state.index];
  if (!slice || document.getElementById("viewer-tags").hidden) return;
  if (root.dataset.tagsInstance === String(slice.instance)) return;
  clearTimeout(tagsTimer);
  tagsTimer = setTimeout(loadTags, 250);
}

function isMonochrome1() {
  return state.volume && state.volume.series.photometric === "MONOCHROME1";
}

// Drawing ----------------------------------------------------------------------------------

function planeIndex(name) {
  return name === "axial" ? state.index : name === "coronal" ? state.row : state.col;
}

function planeCount(name) {
  const v = state.volume;
  if (!v) return 0;
  return name === "axial" ? v.depth : name === "coronal" ? v.rows : v.cols;
}

function slabPlanes(name) {
  if (!state.mip) return 1;
  const v = state.volume;
  const mm = Math.max(1, Number(document.getElementById("viewer-slab").value) || 10);
  const size = name === "axial" ? v.sliceSpacing : name === "coronal" ? v.rowSpacing : v.colSpacing;
  return Math.max(1, Math.round(mm / size));
}

function render(name) {
  const view = views[name];
  const v = state.volume;
  if (!v || view.pane.hidden) return;
  const plane = v.plane(name, planeIndex(name), slabPlanes(name));
  view.plane = plane;
  if (plane) {
    view.image.width = plane.width;
    view.image.height = plane.height;
    const invert = state.invert !== isMonochrome1();
    view.image.getContext("2d").putImageData(v.toImageData(plane, state.center, state.width, invert), 0, 0);
  }
  paint(name);
}

function renderAll() {
  for (const name of VIEWS) render(name);
  publish();
}

// Screen transform of a view: image pixel (x, y) → canvas pixel.
function transform(view) {
  const { canvas, plane } = view;
  const w = plane.width * plane.sx;
  const h = plane.height * plane.sy;
  const scale = Math.min(canvas.width / w, canvas.height / h) * view.zoom;
  const dpr = window.devicePixelRatio || 1;
  return {
    sx: plane.sx * scale,
    sy: plane.sy * scale,
    ox: canvas.width / 2 + view.panX * dpr - (plane.width * plane.sx * scale) / 2,
    oy: canvas.height / 2 + view.panY * dpr - (plane.height * plane.sy * scale) / 2,
  };
}

function toImage(view, event) {
  const rect = view.canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const t = transform(view);
  return [((event.clientX - rect.left) * dpr - t.ox) / t.sx, ((event.clientY - rect.top) * dpr - t.oy) / t.sy];
}

function resize(view) {
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(view.canvas.clientWidth * dpr));
  const height = Math.max(1, Math.round(view.canvas.clientHeight * dpr));
  if (view.canvas.width !== width || view.canvas.height !== height) {
    view.canvas.width = width;
    view.canvas.height = height;
  }
}

function paint(name) {
  const view = views[name];
  resize(view);
  const { ctx, canvas, plane } = view;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const count = planeCount(name);
  view.info.textContent = count ? `${planeIndex(name) + 1}/${count} · W ${Math.round(state.width)} L ${Math.round(state.center)}` : "";
  if (!plane) return;
  const t = transform(view);
  ctx.imageSmoothingEnabled = t.sx < 2;
  ctx.drawImage(view.image, t.ox, t.oy, plane.width * t.sx, plane.height * t.sy);
  if (state.layout === "mpr") references(view, t);
  measurements(view, t);
  if (name === "axial" && !state.firstDrawn) {
    state.firstDrawn = true;
    root.dataset.firstImageMs = performance.now().toFixed(1);
    root.dataset.ready = "true";
  }
}

// Where the other two planes cut this one.
function references(view, t) {
  const v = state.volume;
  const { ctx, plane } = view;
  const z = v.flip ? v.depth - 1 - state.index : state.index;
  const lines = {
    axial: [["h", state.row, "#4caf50"], ["v", state.col, "#ff9800"]],
    coronal: [["h", z, "#2196f3"], ["v", state.col, "#ff9800"]],
    sagittal: [["h", z, "#2196f3"], ["v", state.row, "#4caf50"]],
  }[view.name];
  ctx.lineWidth = 1;
  for (const [dir, at, colour] of lines) {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    if (dir === "h") {
      const y = t.oy + (at + 0.5) * t.sy;
      ctx.moveTo(t.ox, y);
      ctx.lineTo(t.ox + plane.width * t.sx, y);
    } else {
      const x = t.ox + (at + 0.5) * t.sx;
      ctx.moveTo(x, t.oy);
      ctx.lineTo(x, t.oy + plane.height * t.sy);
    }
    ctx.stroke();
  }
}

// Measurements -----------------------------------------------------------------------------

function millimetres(view, a, b) {
  const dx = (b[0] - a[0]) * view.plane.sx;
  const dy = (b[1] - a[1]) * view.plane.sy;
  return Math.hypot(dx, dy);
}

function measureText(view, m) {
  const p = m.points;
  if (m.kind === "length") {
    const unit = state.volume.hasSpacing ? "mm" : "px";
    return `${millimetres(view, p[0], p[1]).toFixed(1)} ${unit}`;
  }
  if (p.length < 3) return "";
  const s = view.plane;
  const u = [(p[0][0] - p[1][0]) * s.sx, (p[0][1] - p[1][1]) * s.sy];
  const w = [(p[2][0] - p[1][0]) * s.sx, (p[2][1] - p[1][1]) * s.sy];
  const cos = (u[0] * w[0] + u[1] * w[1]) / (Math.hypot(...u) * Math.hypot(...w) || 1);
  return `${((Math.acos(Math.max(-1, Math.min(1, cos))) * 180) / Math.PI).toFixed(1)}°`;
}

function measurements(view, t) {
  const { ctx } = view;
  const dpr = window.devicePixelRatio || 1;
  ctx.strokeStyle = "#ffeb3b";
  ctx.fillStyle = "#ffeb3b";
  ctx.lineWidth = 1.5 * dpr;
  ctx.font = `${13 * dpr}px sans-serif`;
  for (const m of state.measures) {
    if (m.view !== view.name || m.plane !== planeIndex(view.name)) continue;
    const pts = m.points.map(([x, y]) => [t.ox + x * t.sx, t.oy + y * t.sy]);
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
    const [lx, ly] = pts[pts.length - 1];
    ctx.fillText(measureText(view, m), lx + 6 * dpr, ly - 6 * dpr);
  }
}

function recordMeasure(view, m) {
  const text = measureText(view, m);
  if (text) {
    root.dataset.measure = text;
    root.dataset.measureKind = m.kind;
  }
}

// Navigation and window --------------------------------------------------------------------

function scroll(name, delta, wrap = false) {
  const count = planeCount(name);
  if (!count) return;
  let next = planeIndex(name) + delta;
  next = wrap ? (next + count) % count : Math.max(0, Math.min(count - 1, next));
  if (name === "axial") state.index = next;
  else if (name === "coronal") state.row = next;
  else state.col = next;
  if (state.layout === "mpr") renderAll();
  else {
    render(name);
    publish();
  }
}

function setWindow(center, width) {
  state.center = center;
  state.width = Math.max(1, width);
  renderAll();
}

function defaultWindow() {
  const v = state.volume;
  const first = v.series.slices[state.index];
  if (first.window) return first.window;
  if (v.series.modality === "CT") return CT_WINDOW;
  return v.autoWindow(state.index);
}

function reset() {
  stopCine();
  for (const view of Object.values(views)) Object.assign(view, { zoom: 1, panX: 0, panY: 0 });
  state.invert = false;
  state.measures = [];
  state.pending = null;
  delete root.dataset.measure;
  document.getElementById("viewer-invert").setAttribute("aria-pressed", "false");
  document.getElementById("viewer-preset").value = "";
  const [center, width] = defaultWindow();
  setWindow(center, width);
}

// Cine --------------------------------------------------------------------------------------

function stopCine() {
  if (state.cine) clearInterval(state.cine);
  state.cine = null;
  const button = document.getElementById("viewer-cine");
  button.textContent = labels.play;
  button.setAttribute("aria-pressed", "false");
  root.dataset.cine = "false";
}

function toggleCine() {
  if (state.cine) return stopCine();
  const fps = Math.max(1, Math.min(60, Number(document.getElementById("viewer-fps").value) || 10));
  state.cine = setInterval(() => scroll(state.active, 1, true), 1000 / fps);
  const button = document.getElementById("viewer-cine");
  button.textContent = labels.pause;
  button.setAttribute("aria-pressed", "true");
  root.dataset.cine = "true";
}

// Pointer, wheel and keys ------------------------------------------------------------------

function attach(view) {
  const pointers = new Map();
  let drag = null;
  let wheelRest = 0;

  view.canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  view.canvas.addEventListener(
    "wheel",
    (e) => {
      if (!state.volume) return;
      e.preventDefault();
      state.active = view.name;
      if (e.ctrlKey || e.metaKey) {
        view.zoom = Math.max(0.2, Math.min(20, view.zoom * Math.exp(-e.deltaY / 300)));
        paint(view.name);
        publish();
        return;
      }
      // A mouse notch (about 100 px) is one slice, notches the browser coalesced are
      // several; a touchpad's small deltas add up to one.
      const delta = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaY;
      if (Math.abs(delta) >= 50) {
        wheelRest = 0;
        scroll(view.name, Math.sign(delta) * Math.max(1, Math.round(Math.abs(delta) / 100)));
      } else {
        wheelRest += delta;
        if (Math.abs(wheelRest) >= 50) {
          scroll(view.name, Math.sign(wheelRest));
          wheelRest = 0;
        }
      }
    },
    { passive: false },
  );

  view.canvas.addEventListener("pointerdown", (e) => {
    // Scrolling and windowing work while the current slice is still loading.
    if (!state.volume) return;
    e.preventDefault();
    state.active = view.name;
    view.canvas.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, [e.clientX, e.clientY]);
    if (pointers.size === 2) {
      // Two fingers: pinch zooms, moving both pans; whatever one finger began is dropped.
      if (drag && drag.measure && !drag.keep) state.measures.pop();
      const [a, b] = [...pointers.values()];
      drag = { kind: "pinch", distance: Math.hypot(a[0] - b[0], a[1] - b[1]), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2], zoom: view.zoom, panX: view.panX, panY: view.panY };
      return;
    }
    let mode = e.button === 2 ? "wl" : e.button === 1 ? "pan" : state.mode;
    if (!view.plane && (mode === "length" || mode === "angle")) mode = "none"; // nothing to measure
    drag = { kind: mode, x: e.clientX, y: e.clientY, acc: 0, center: state.center, width: state.width, zoom: view.zoom, panX: view.panX, panY: view.panY };
    if (mode === "length") {
      const p = toImage(view, e);
      drag.measure = { kind: "length", view: view.name, plane: planeIndex(view.name), points: [p, p.slice()] };
      state.measures.push(drag.measure);
    } else if (mode === "angle") {
      const p = toImage(view, e);
      if (state.pending && state.pending.view === view.name) {
        drag.measure = state.pending;
        drag.measure.points.push(p);
        drag.keep = true;
        state.pending = null;
      } else {
        drag.measure = { kind: "angle", view: view.name, plane: planeIndex(view.name), points: [p, p.slice()] };
        state.measures.push(drag.measure);
      }
    }
  });

  view.canvas.addEventListener("pointermove", (e) => {
    if (!pointers.has(e.pointerId) || !drag) return;
    pointers.set(e.pointerId, [e.clientX, e.clientY]);
    if (drag.kind === "pinch") {
      if (pointers.size < 2) return;
      const [a, b] = [...pointers.values()];
      const distance = Math.hypot(a[0] - b[0], a[1] - b[1]);
      view.zoom = Math.max(0.2, Math.min(20, (drag.zoom * distance) / Math.max(drag.distance, 1)));
      view.panX = drag.panX + (a[0] + b[0]) / 2 - drag.mid[0];
      view.panY = drag.panY + (a[1] + b[1]) / 2 - drag.mid[1];
      paint(view.name);
      publish();
      return;
    }
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (drag.kind === "scroll") {
      const step = Math.trunc((dy - drag.acc) / 6);
      if (step) {
        drag.acc += step * 6;
        scroll(view.name, step);
      }
    } else if (drag.kind === "wl") {
      const k = Math.max(1, drag.width / 256);
      setWindow(drag.center + dy * k, drag.width + dx * k * 2);
    } else if (drag.kind === "zoom") {
      view.zoom = Math.max(0.2, Math.min(20, drag.zoom * Math.exp(-dy / 150)));
      paint(view.name);
      publish();
    } else if (drag.kind === "pan") {
      view.panX = drag.panX + dx;
      view.panY = drag.panY + dy;
      paint(view.name);
    } else if (drag.measure) {
      drag.measure.points[drag.measure.points.length - 1] = toImage(view, e);
      paint(view.name);
    }
  });

  const end = (e) => {
    if (!pointers.has(e.pointerId)) return;
    pointers.delete(e.pointerId);
    if (drag && drag.kind === "pinch") {
      if (pointers.size === 0) drag = null;
      return;
    }
    if (drag && drag.measure) {
      const m = drag.measure;
      const [a, b] = m.points;
      const tooShort = m.points.length === 2 && Math.hypot(a[0] - b[0], a[1] - b[1]) < 1;
      if (tooShort && !drag.keep) state.measures.splice(state.measures.indexOf(m), 1);
      else if (m.kind === "angle" && m.points.length === 2) state.pending = m;
      else recordMeasure(view, m);
      paint(view.name);
    }
    drag = null;
  };
  view.canvas.addEventListener("pointerup", end);
  view.canvas.addEventListener("pointercancel", end);
  new ResizeObserver(() => paint(view.name)).observe(view.canvas);
}

const KEYS = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -10, PageDown: 10 };

document.addEventListener("keydown", (e) => {
  if (!state.volume || e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key in KEYS) scroll(state.active, KEYS[e.key]);
  else if (e.key === "Home") scroll(state.active, -planeCount(state.active));
  else if (e.key === "End") scroll(state.active, planeCount(state.active));
  else if (e.key === "i") document.getElementById("viewer-invert").click();
  else if (e.key === "r") reset();
  else if (e.key === " ") toggleCine();
  else return;
  e.preventDefault();
});

// Toolbar ----------------------------------------------------------------------------------

function setMode(mode) {
  state.mode = mode;
  state.pending = null;
  for (const b of root.querySelectorAll(".viewer-modes button")) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
  publish();
}

function setLayout(layout) {
  state.layout = layout;
  document.getElementById("viewer-layout").setAttribute("aria-pressed", String(layout === "mpr"));
  views.coronal.pane.hidden = layout !== "mpr";
  views.sagittal.pane.hidden = layout !== "mpr";
  root.dataset.layout = layout;
  renderAll();
}

function toolbar() {
  for (const b of root.querySelectorAll(".viewer-modes button")) b.addEventListener("click", () => setMode(b.dataset.mode));
  document.getElementById("viewer-preset").addEventListener("change", (e) => {
    if (!e.target.value) return reset();
    const [center, width] = e.target.value.split(",").map(Number);
    setWindow(center, width);
    root.dataset.preset = e.target.selectedOptions[0].dataset.preset;
  });
  document.getElementById("viewer-invert").addEventListener("click", (e) => {
    state.invert = !state.invert;
    e.currentTarget.setAttribute("aria-pressed", String(state.invert));
    renderAll();
  });
  document.getElementById("viewer-layout").addEventListener("click", () => setLayout(state.layout === "mpr" ? "stack" : "mpr"));
  document.getElementById("viewer-mip").addEventListener("click", (e) => {
    state.mip = !state.mip;
    e.currentTarget.setAttribute("aria-pressed", String(state.mip));
    renderAll();
  });
  document.getElementById("viewer-slab").addEventListener("change", () => state.mip && renderAll());
  document.getElementById("viewer-cine").addEventListener("click", toggleCine);
  document.getElementById("viewer-fps").addEventListener("change", () => {
    if (state.cine) {
      stopCine();
      toggleCine();
    }
  });
  document.getElementById("viewer-reset").addEventListener("click", reset);
  document.getElementById("viewer-slider").addEventListener("input", (e) => scroll("axial", Number(e.target.value) - state.index));
  const tagsToggle = document.getElementById("viewer-tags-toggle");
  tagsToggle.addEventListener("click", () => {
    const panel = document.getElementById("viewer-tags");
    panel.hidden = !panel.hidden;
    tagsToggle.setAttribute("aria-pressed", String(!panel.hidden));
    if (!panel.hidden) loadTags();
  });
  document.getElementById("viewer-tags-filter").addEventListener("input", filterTags);
}

// DICOM tags -------------------------------------------------------------------------------

async function loadTags() {
  const slice = state.volume && state.volume.series.slices[state.index];
  if (!slice) return;
  const body = document.querySelector("#viewer-tags tbody");
  const response = await fetch(`/imaging/instances/${slice.instance}/tags.json`, { credentials: "same-origin" });
  if (!response.ok) return;
  const { tags } = await response.json();
  body.replaceChildren(
    ...tags.map((t) => {
      const tr = document.createElement("tr");
      for (const value of [t.tag, t.keyword, t.vr, t.value]) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.append(td);
      }
      return tr;
    }),
  );
  root.dataset.tagsInstance = String(slice.instance);
  filterTags();
}

function filterTags() {
  const needle = document.getElementById("viewer-tags-filter").value.trim().toLowerCase();
  for (const tr of document.querySelectorAll("#viewer-tags tbody tr")) tr.hidden = Boolean(needle) && !tr.textContent.toLowerCase().includes(needle);
}

// Series -----------------------------------------------------------------------------------

function seriesList(manifest) {
  const list = document.getElementById("viewer-series");
  list.replaceChildren(
    ...manifest.series.map((s) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "viewer-thumb";
      button.dataset.series = String(s.id);
      const img = document.createElement("img");
      img.src = s.thumbnail;
      img.alt = "";
      img.loading = "lazy";
      const text = document.createElement("span");
      text.textContent = `${s.number ?? ""} ${s.modality} ${s.description || ""} (${s.slices.length})`.trim();
      button.append(img, text);
      button.addEventListener("click", () => openSeries(s));
      return button;
    }),
  );
}

let pendingDraw = false;
function drawSoon() {
  if (pendingDraw) return;
  pendingDraw = true;
  requestAnimationFrame(() => {
    pendingDraw = false;
    if (state.layout === "mpr") renderAll();
  });
}

async function openSeries(series) {
  if (state.abort) state.abort.abort();
  stopCine();
  const abort = new AbortController();
  state.abort = abort;
  const volume = new Volume(series);
  state.volume = volume;
  state.measures = [];
  state.index = Math.floor(volume.depth / 2);
  state.row = Math.floor(volume.rows / 2);
  state.col = Math.floor(volume.cols / 2);
  for (const b of document.querySelectorAll(".viewer-thumb")) b.setAttribute("aria-current", String(b.dataset.series === String(series.id)));
  const slider = document.getElementById("viewer-slider");
  slider.max = String(volume.depth - 1);
  root.dataset.series = String(series.id);
  root.dataset.slices = String(volume.depth);
  root.dataset.loaded = "0";
  for (const id of ["viewer-layout", "viewer-mip"]) document.getElementById(id).disabled = !series.volume;
  if (!series.volume && state.layout === "mpr") setLayout("stack");
  const progress = document.getElementById("viewer-progress");
  let windowSet = false;
  const onSlice = (index) => {
    if (state.volume !== volume) return;
    if (!windowSet) {
      windowSet = true;
      const [center, width] = defaultWindow();
      state.center = center;
      state.width = width;
    }
    root.dataset.loaded = String(volume.loaded);
    progress.textContent = volume.loaded < volume.depth ? format(labels.loading, { done: volume.loaded, total: volume.depth }) : format(labels.loaded, { total: volume.depth });
    if (index === state.index) {
      render("axial");
      publish();
    }
    drawSoon();
  };
  try {
    await volume.load(state.index, onSlice, abort.signal);
    if (state.volume === volume) renderAll();
  } catch (error) {
    if (!abort.signal.aborted) {
      progress.textContent = labels.failed;
      root.dataset.error = String(error);
    }
  }
}

async function start() {
  toolbar();
  for (const view of Object.values(views)) attach(view);
  publish();
  const response = await fetch(root.dataset.manifest, { credentials: "same-origin" });
  if (!response.ok) {
    document.getElementById("viewer-progress").textContent = labels.failed;
    return;
  }
  state.manifest = await response.json();
  seriesList(state.manifest);
  const series = state.manifest.series;
  if (!series.length) {
    document.getElementById("viewer-progress").textContent = labels.empty;
    return;
  }
  // The series with the most images first: the one a reader usually wants.
  const main = series.reduce((best, s) => (s.slices.length > best.slices.length ? s : best), series[0]);
  openSeries(main);
}

start();
