// Resumable upload of DICOM files, folders and zips (/imaging/upload) over the tus-style
// API at /api/v1/imaging/uploads. Each file is sent in chunks; a broken connection is
// retried with growing pauses, asking the server (HEAD) where to continue; the upload ids
// are kept in localStorage by file name, size and date, so choosing the same files after a
// reload continues them. No inline scripts (the CSP forbids them), no libraries.
"use strict";

(() => {
  const root = document.getElementById("imaging-upload");
  if (!root) return;
  const API = root.dataset.api;
  const CHUNK = Number(root.dataset.chunk);
  const MAX_BYTES = Number(root.dataset.maxBytes);
  const EXPIRY_MS = Number(root.dataset.expiryHours) * 3600 * 1000;
  const STORE_PREFIX = `xt.imaging-upload.${root.dataset.user}.`;
  const PARALLEL = 3;
  const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
  const text = document.getElementById("upload-text").dataset;
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const $ = (id) => document.getElementById(id);

  const tasks = [];
  let paused = false;
  let resumeWaiters = [];
  let running = 0;
  const studies = new Map();
  const counts = { stored: 0, already_stored: 0, refused: 0, skipped: 0 };

  const format = (template, values) =>
    template.replace(/\{(\w+)\}/g, (_, key) => (key in values ? String(values[key]) : ""));

  const human = (bytes) => {
    const units = ["B", "KB", "MB", "GB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  };

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // localStorage: where an earlier upload of the same file got to --------------------------

  const fileKey = (name, file) => STORE_PREFIX + [name, file.size, file.lastModified].join("|");

  const remembered = (key) => {
    try {
      const value = JSON.parse(localStorage.getItem(key) || "null");
      if (value && Date.now() - value.at < EXPIRY_MS) return value;
    } catch (error) {
      /* a damaged entry is forgotten below */
    }
    localStorage.removeItem(key);
    return null;
  };

  const remember = (key, value) => {
    try {
      localStorage.setItem(key, JSON.stringify({ ...value, at: Date.now() }));
    } catch (error) {
      /* storage full or disabled: the upload still works, it just cannot resume */
    }
  };

  const forget = (key) => localStorage.removeItem(key);

  const randomId = () => {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes); // also on plain http, unlike crypto.randomUUID
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  };

  const showUnfinished = () => {
    const keys = [];
    for (let i = 0; i < localStorage.length; i += 1) keys.push(localStorage.key(i));
    const mine = keys.filter((key) => key && key.startsWith(STORE_PREFIX));
    const n = mine.filter((key) => remembered(key)).length;
    const note = $("upload-unfinished");
    note.hidden = n === 0;
    note.textContent = format(text.unfinished, { n });
  };

  // HTTP -------------------------------------------------------------------------------------

  class NetworkError extends Error {}

  // Resolves with every HTTP answer; rejects with NetworkError when none arrived.
  const call = (method, url, { body, headers = {}, onProgress, task } = {}) =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", "1.0.0");
      if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf.content);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.timeout = 120000;
      if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => {
        let json = null;
        try {
          json = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch (error) {
          json = null;
        }
        resolve({ status: xhr.status, json, header: (name) => xhr.getResponseHeader(name) });
      };
      xhr.onerror = () => reject(new NetworkError("network"));
      xhr.ontimeout = () => reject(new NetworkError("timeout"));
      xhr.onabort = () => reject(new NetworkError("abort"));
      if (task) task.xhr = xhr;
      xhr.send(body === undefined ? null : body);
    });

  const retryable = (status) => status === 0 || status === 429 || status >= 500;

  class Refused extends Error {
    constructor(answer) {
      super((answer.json && answer.json.error && answer.json.error.message) || String(answer.status));
      this.answer = answer;
    }
  }

  // Retries network failures and 5xx answers until an answer that is not one arrives.
  async function patiently(task, send) {
    for (let attempt = 0; ; attempt += 1) {
      await whileNotPaused();
      try {
        const answer = await send();
        if (!retryable(answer.status)) return answer;
      } catch (error) {
        if (!(error instanceof NetworkError)) throw error;
        if (paused) continue; // aborted by the pause button: not a failure
      }
      const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      task.row.li.dataset.state = "retrying";
      for (let left = Math.ceil(wait / 1000); left > 0; left -= 1) {
        setState(task, format(text.retrying, { s: left }));
        await sleep(1000);
      }
      task.row.li.dataset.state = "uploading";
      setState(task, text.uploading);
    }
  }

  function whileNotPaused() {
    if (!paused) return Promise.resolve();
    return new Promise((resolve) => resumeWaiters.push(resolve));
  }

  // One file ---------------------------------------------------------------------------------

  async function start(task) {
    const stored = remembered(task.key);
    if (stored) {
      const head = await patiently(task, () => call("HEAD", `${API}/${stored.id}`, { task }));
      if (head.status === 200) {
        task.id = stored.id;
        task.offset = Number(head.header("Upload-Offset"));
        return;
      }
      forget(task.key); // expired, cancelled or unknown: start again
    }
    const requestId = (stored && stored.requestId) || randomId();
    remember(task.key, { requestId });
    const created = await patiently(task, () =>
      call("POST", API, {
        task,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          file_name: task.name,
          size: task.file.size,
          kind: task.kind,
          client_request_id: requestId,
        }),
      }),
    );
    if (created.status !== 200 && created.status !== 201) throw new Refused(created);
    task.id = created.json.id;
    task.offset = created.json.offset;
    remember(task.key, { id: task.id, requestId });
  }

  async function sendChunks(task) {
    while (task.offset < task.file.size) {
      const from = task.offset;
      const chunk = task.file.slice(from, Math.min(from + CHUNK, task.file.size));
      const answer = await patiently(task, async () => {
        // After a failure the server may hold more or less than we think: ask it.
        if (task.unsure) {
          const head = await call("HEAD", `${API}/${task.id}`, { task });
          if (head.status !== 200) return head;
          task.offset = Number(head.header("Upload-Offset"));
          task.unsure = false;
          if (task.offset !== from) return { status: 409, header: head.header, json: null };
        }
        task.unsure = true;
        const result = await call("PATCH", `${API}/${task.id}`, {
          task,
          body: chunk,
          headers: { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(from) },
          onProgress: (loaded) => progress(task, from + Math.min(loaded, chunk.size)),
        });
        if (!retryable(result.status)) task.unsure = false;
        return result;
      });
      const offset = Number(answer.header("Upload-Offset"));
      if (answer.status === 204 || (answer.status === 409 && Number.isFinite(offset) && answer.header("Upload-Offset") !== null)) {
        task.offset = offset;
        progress(task, offset);
        continue;
      }
      if (answer.status === 404) {
        forget(task.key); // gone on the server: start this file again from the beginning
        task.id = null;
        task.offset = 0;
        await start(task);
        continue;
      }
      throw new Refused(answer);
    }
  }

  async function finish(task) {
    setState(task, text.storing);
    for (;;) {
      const answer = await patiently(task, () => call("POST", `${API}/${task.id}/complete`, { task }));
      if (answer.status === 200) return answer.json;
      if (answer.status === 409 && answer.json && answer.json.error.code === "upload_ingesting") {
        await sleep(3000); // another request (our lost first try) is storing it
        const state = await patiently(task, () => call("GET", `${API}/${task.id}`, { task }));
        if (state.status === 200 && state.json.status === "completed") return state.json;
        continue;
      }
      throw new Refused(answer);
    }
  }

  async function run(task) {
    try {
      setState(task, text.uploading);
      if (!task.id) await start(task);
      await sendChunks(task);
      const result = await finish(task);
      forget(task.key);
      task.done = true;
      progress(task, task.file.size);
      setState(task, text.done, "done");
      showResult(result);
    } catch (error) {
      task.done = true;
      const message = error instanceof Refused ? error.message : String(error);
      if (error instanceof Refused && [403, 404, 409, 413, 422].includes(error.answer.status)) {
        forget(task.key);
      }
      setState(task, `${text.failed}: ${message}`, "failed");
      addRow(task.name, "refused", text.failed, message);
    }
  }

  // The queue --------------------------------------------------------------------------------

  function pump() {
    while (running < PARALLEL) {
      const next = tasks.find((t) => !t.started);
      if (!next) break;
      next.started = true;
      running += 1;
      run(next).finally(() => {
        running -= 1;
        if (tasks.every((t) => t.done)) showUnfinished();
        updateOverall();
        pump();
      });
    }
    updateOverall();
  }

  function add(file, relativePath) {
    const name = relativePath || file.webkitRelativePath || file.name;
    const base = name.split("/").pop();
    const task = {
      file,
      name,
      key: fileKey(name, file),
      kind: /\.zip$/i.test(base) ? "zip" : "dicom",
      id: null,
      offset: 0,
      sent: 0,
      started: false,
      done: false,
      unsure: false,
    };
    task.row = queueRow(task);
    if (file.size === 0 || base.startsWith(".")) {
      Object.assign(task, { started: true, done: true });
      setState(task, text.skippedLocal, "done");
      addRow(name, "skipped", text.skipped, text.skippedLocal);
      return;
    }
    if (file.size > MAX_BYTES) {
      Object.assign(task, { started: true, done: true });
      setState(task, text.tooLarge, "failed");
      addRow(name, "refused", text.refused, text.tooLarge);
      return;
    }
    tasks.push(task);
  }

  function queueRow(task) {
    const li = document.createElement("li");
    const head = document.createElement("div");
    head.className = "upload-item-head";
    const label = document.createElement("span");
    label.className = "upload-item-name";
    label.textContent = `${task.name} (${human(task.file.size)})`;
    const state = document.createElement("span");
    state.className = "upload-item-state";
    state.textContent = text.waiting;
    const bar = document.createElement("progress");
    bar.max = Math.max(task.file.size, 1);
    bar.value = 0;
    head.append(label, state);
    li.append(head, bar);
    li.dataset.name = task.name;
    $("upload-queue").append(li);
    return { li, state, bar };
  }

  function setState(task, label, kind) {
    task.row.state.textContent = paused && !task.done ? text.paused : label;
    if (kind) task.row.li.className = kind;
  }

  function progress(task, sent) {
    task.sent = sent;
    task.row.bar.value = sent;
    updateOverall();
  }

  function updateOverall() {
    const all = tasks;
    const size = all.reduce((sum, t) => sum + t.file.size, 0);
    const sent = all.reduce((sum, t) => sum + t.sent, 0);
    const done = all.filter((t) => t.done).length;
    $("upload-overall").hidden = all.length === 0;
    const bar = $("upload-overall-bar");
    bar.max = Math.max(size, 1);
    bar.value = sent;
    $("upload-overall-text").textContent = format(text.progress, {
      done,
      total: all.length,
      sent: human(sent),
      size: human(size),
    });
    const busy = all.some((t) => !t.done);
    $("upload-pause").hidden = !busy || paused;
    $("upload-continue").hidden = !busy || !paused;
  }

  // Results ----------------------------------------------------------------------------------

  function addRow(name, outcome, label, detail) {
    $("upload-results").hidden = false;
    const tr = document.createElement("tr");
    tr.dataset.outcome = outcome;
    for (const [value, cls] of [[name, ""], [label, `outcome-${outcome}`], [detail || "", "muted"]]) {
      const td = document.createElement("td");
      td.textContent = value;
      if (cls) td.className = cls;
      tr.append(td);
    }
    document.querySelector("#upload-table tbody").append(tr);
  }

  function showResult(result) {
    for (const file of result.files) {
      const name = result.kind === "zip" ? `${result.file_name} › ${file.name}` : file.name;
      counts[file.outcome] = (counts[file.outcome] || 0) + 1;
      addRow(name, file.outcome, text[file.outcome] || file.outcome, file.message || "");
    }
    $("upload-counts").textContent = format(text.counts, counts);
    for (const study of result.studies) {
      studies.set(`${study.study_uid}|${study.patient_id}`, study);
    }
    renderStudies();
    $("upload-results").hidden = false;
  }

  function renderStudies() {
    const list = $("upload-studies");
    list.replaceChildren();
    for (const study of studies.values()) {
      const li = document.createElement("li");
      const what = [study.study_date, study.modalities.join("/"), study.description || study.study_uid]
        .filter(Boolean)
        .join(" · ");
      const title = document.createElement("strong");
      // DICOM person names separate their parts with ^ (family^given).
      const patient = (study.patient_name || "").replace(/\^+/g, " ").trim();
      title.textContent = `${patient} ${what}`.trim();
      const more = document.createElement("span");
      more.className = "muted";
      more.textContent = ` (${format(text.instances, { n: study.instance_count })}) `;
      li.append(title, more);
      const view = document.createElement("a");
      view.href = study.viewer_href;
      view.className = "open-viewer";
      view.textContent = text.openViewer;
      li.append(view, " ");
      if (study.chart_href) {
        const link = document.createElement("a");
        link.href = study.chart_href;
        link.textContent = text.openChart;
        li.append(link);
      } else {
        const note = document.createElement("span");
        note.className = "muted";
        note.textContent = text.noPatient;
        li.append(note);
      }
      list.append(li);
    }
  }

  // Choosing files ---------------------------------------------------------------------------

  function addFiles(files) {
    for (const file of files) add(file);
    pump();
  }

  // Folders dropped on the page: walk them (readEntries answers in batches).
  async function walk(entry, path, out) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push([file, path + file.name]);
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${path}${entry.name}/`, out);
      }
    }
  }

  async function dropped(event) {
    const items = Array.from(event.dataTransfer.items || []);
    const entries = items.map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    if (!entries.length) {
      addFiles(event.dataTransfer.files);
      return;
    }
    const found = [];
    for (const entry of entries) await walk(entry, "", found);
    for (const [file, path] of found) add(file, path);
    pump();
  }

  $("upload-files").addEventListener("change", (event) => {
    addFiles(event.target.files);
    event.target.value = "";
  });
  $("upload-folder").addEventListener("change", (event) => {
    addFiles(event.target.files);
    event.target.value = "";
  });
  const drop = $("upload-drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    dropped(event);
  });
  if (!("webkitdirectory" in document.createElement("input"))) $("upload-folder-label").hidden = true;

  $("upload-pause").addEventListener("click", () => {
    paused = true;
    for (const task of tasks) {
      if (!task.done) {
        task.unsure = true;
        setState(task, text.paused);
        if (task.xhr) task.xhr.abort();
      }
    }
    updateOverall();
  });
  $("upload-continue").addEventListener("click", () => {
    paused = false;
    for (const task of tasks) if (!task.done) setState(task, task.started ? text.uploading : text.waiting);
    const waiters = resumeWaiters;
    resumeWaiters = [];
    for (const resolve of waiters) resolve();
    updateOverall();
  });
  window.addEventListener("online", () => {
    // Back online: do not wait out the rest of a long pause between retries.
    for (const task of tasks) if (!task.done && task.xhr) task.unsure = true;
  });

  showUnfinished();
})();
