// The page of `chad serve`: record from the microphone (or choose a file), send it to POST /api/query,
// list the songs with their matched time, play a song from there, and draw the pitch contours of a match.
"use strict";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const state = {
  health: null,
  token: params.get("token") || localStorage.getItem("chad-token") || "",
  maxSeconds: 15,          // the recording stops by itself after this many seconds (10-20 s, or less by ?max=)
  rec: null,               // the recording in progress
  result: null,            // the last answer of /api/query
};

function fmtTime(t) {
  const m = Math.floor(t / 60);
  return `${m}:${(t - 60 * m).toFixed(2).padStart(5, "0")}`;
}

function setStatus(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

function withToken(url) {
  if (!state.token) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(state.token);
}

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) $("token-box").hidden = false;
  if (!r.ok) {
    const msg = body && body.error ? body.error : `HTTP ${r.status}`;
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return body;
}

// ---- the server's indexes and limits --------------------------------------------------------------

async function loadHealth() {
  let h;
  try {
    const r = await fetch("/api/health");
    h = await r.json();
  } catch (e) {
    setStatus("The server does not answer: is `chad serve` running?", true);
    return;
  }
  state.health = h;
  const asked = parseFloat(params.get("max"));
  const limit = Math.min(20, h.limits.max_query_s);
  state.maxSeconds = asked > 0 ? Math.min(asked, limit) : Math.min(15, limit);
  $("clock").textContent = `0.0 / ${state.maxSeconds} s`;
  $("version").textContent = `chad ${h.version}`;
  const sel = $("index");
  sel.innerHTML = "";
  for (const ix of h.indexes) {
    const o = document.createElement("option");
    o.value = ix.name;
    o.textContent = ix.present ? `${ix.name} (${ix.songs} songs${ix.fused ? ", M_fused" : ""})` : `${ix.name} (missing)`;
    sel.appendChild(o);
  }
  sel.value = params.get("index") || h.default_index;
  fillRerankers();
  const ix = h.indexes.find((i) => i.name === sel.value);
  $("server").textContent = ix && ix.present
    ? `${ix.songs} songs in index ${ix.name}` : (ix ? ix.error : "");
  if (h.auth && !state.token) $("token-box").hidden = false;
  $("record").disabled = !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  if ($("record").disabled) setStatus("This browser gives no microphone here (it needs https or localhost): choose a file.");
}

function fillRerankers() {
  const h = state.health;
  const ix = h.indexes.find((i) => i.name === $("index").value) || {};
  const sel = $("rerank");
  sel.innerHTML = "";
  for (const r of ix.rerankers || ["pearson", "dtw"]) {
    const o = document.createElement("option");
    o.value = o.textContent = r;
    sel.appendChild(o);
  }
  const want = params.get("rerank") || h.default_rerank;
  if ([...sel.options].some((o) => o.value === want)) sel.value = want;
}

// ---- recording --------------------------------------------------------------------------------------

async function startRecording() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (e) {
    setStatus(`No microphone: ${e.message || e.name}. Allow the microphone, or choose a file.`, true);
    return;
  }
  let ctx;
  try { ctx = new AudioContext({ sampleRate: 16000 }); } catch (e) { ctx = new AudioContext(); }
  const source = ctx.createMediaStreamSource(stream);
  const sink = ctx.createGain();
  sink.gain.value = 0;
  sink.connect(ctx.destination);
  const rec = { stream, ctx, source, sink, blocks: [], n: 0, node: null, stopping: false };
  const onBlock = (block) => {
    if (rec.stopping) return;
    rec.blocks.push(block);
    rec.n += block.length;
    showLevel(levelDb(block));
    const secs = rec.n / ctx.sampleRate;
    $("clock").textContent = `${secs.toFixed(1)} / ${state.maxSeconds} s`;
    if (secs >= state.maxSeconds) stopRecording();
  };
  if (ctx.audioWorklet && typeof AudioWorkletNode !== "undefined") {
    await ctx.audioWorklet.addModule("/static/recorder-worklet.js");
    rec.node = new AudioWorkletNode(ctx, "chad-recorder");
    rec.node.port.onmessage = (e) => onBlock(e.data);
  } else {                                  // older browsers
    rec.node = ctx.createScriptProcessor(2048, 1, 1);
    rec.node.onaudioprocess = (e) => onBlock(new Float32Array(e.inputBuffer.getChannelData(0)));
  }
  source.connect(rec.node);
  rec.node.connect(sink);
  if (ctx.state === "suspended") await ctx.resume();
  state.rec = rec;
  const b = $("record");
  b.classList.add("recording");
  b.innerHTML = "&#9632; Stop and search";
  setStatus(`Recording: hum the tune (up to ${state.maxSeconds} s).`);
}

function showLevel(db) {
  const pct = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
  const bar = $("meter-bar");
  bar.style.width = `${pct}%`;
  bar.classList.toggle("loud", db > -3);
  $("level").textContent = Number.isFinite(db) ? `${db.toFixed(0)} dB` : "\u2013 dB";
}

async function stopRecording() {
  const rec = state.rec;
  if (!rec || rec.stopping) return;
  rec.stopping = true;
  state.rec = null;
  try { rec.source.disconnect(); rec.node.disconnect(); } catch (e) { /* already gone */ }
  rec.stream.getTracks().forEach((t) => t.stop());
  const sr = rec.ctx.sampleRate;
  rec.ctx.close();
  const b = $("record");
  b.classList.remove("recording");
  b.innerHTML = "&#9679; Record";
  showLevel(-Infinity);
  const samples = concatBlocks(rec.blocks);
  if (samples.length < 0.5 * sr) {
    setStatus("The recording is too short: hum for a few seconds.", true);
    return;
  }
  await search(encodeWav(samples, sr), "recording.wav");
}

// ---- searching --------------------------------------------------------------------------------------

async function search(blob, name) {
  const form = new FormData();
  form.append("audio", blob, name);
  form.append("top", $("top").value);
  form.append("rerank", $("rerank").value);
  form.append("index", $("index").value);
  setStatus("Searching\u2026");
  $("record").disabled = true;
  try {
    const res = await api("/api/query", { method: "POST", body: form });
    state.result = res;
    showResults(res);
    const unsure = res.matches.length && res.matches.every((m) => m.confident === false && typeof m.confidence === "number");
    setStatus(!res.matches.length ? "No song matches (is the index empty?)."
      : unsure ? "Not sure: no song stands out. Hum a longer or clearer part to be sure." : "");
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $("record").disabled = false;
  }
}

function showResults(res) {
  $("results").hidden = false;
  const t = res.timing || {};
  const ms = (k) => (typeof t[k] === "number" ? `${k.replace(/_s$/, "")} ${(t[k] * 1000).toFixed(0)} ms` : null);
  const steps = ["decode_s", "fingerprint_s", "f0_s", "ann_s", "rerank_s", "total_s"].map(ms).filter(Boolean);
  $("summary").textContent =
    `query ${res.duration_s.toFixed(1)} s \u00b7 ${steps.join(" \u00b7 ")} \u00b7 index ${res.index}, ${res.rerank}` +
    (t.model ? ` (M_${t.model})` : "");
  const body = $("matches").querySelector("tbody");
  body.innerHTML = "";
  res.matches.forEach((m, i) => {
    const tr = document.createElement("tr");
    tr.dataset.songId = m.song_id;
    tr.dataset.timeS = m.time_s;
    if (i === 0) tr.classList.add("first");
    const score = m.score === null ? "\u2013" : m.score.toFixed(3);
    tr.innerHTML = `<td class="rank num"></td><td class="title"></td><td class="score num"></td>` +
      `<td class="time num"></td><td class="actions"><button type="button" class="play">&#9654; play</button> ` +
      `<button type="button" class="show">pitch</button></td>`;
    tr.querySelector(".rank").textContent = m.rank;
    tr.querySelector(".title").textContent = m.title && m.title !== m.song_id ? `${m.title}` : m.song_id;
    tr.querySelector(".title").title = m.song_id;
    tr.querySelector(".score").textContent = score;
    if (typeof m.confidence === "number") tr.querySelector(".score").title = `confidence ${m.confidence.toFixed(2)}`;
    tr.querySelector(".time").textContent = fmtTime(m.time_s);
    tr.querySelector(".play").addEventListener("click", () => play(m));
    tr.querySelector(".show").addEventListener("click", () => showAlignment(m, tr));
    body.appendChild(tr);
  });
  if (res.matches.length) showAlignment(res.matches[0], body.firstElementChild);
  else $("alignment-figure").hidden = true;
}

function play(m) {
  const p = $("player");
  // the media fragment starts playback at the matched time (the server answers HTTP range requests)
  p.src = withToken(m.audio_url) + `#t=${m.time_s.toFixed(2)}`;
  p.play().catch((e) => setStatus(`Cannot play ${m.song_id}: ${e.message}`, true));
}

// ---- the alignment picture --------------------------------------------------------------------------

async function showAlignment(m, tr) {
  document.querySelectorAll("#matches tr.selected").forEach((r) => r.classList.remove("selected"));
  if (tr) tr.classList.add("selected");
  const res = state.result;
  const fig = $("alignment-figure");
  const cap = $("alignment-caption");
  fig.hidden = false;
  cap.textContent = `pitch of your recording over ${m.title || m.song_id} from ${fmtTime(m.time_s)}\u2026`;
  const url = `/api/queries/${encodeURIComponent(res.query_id)}/alignment?song_id=${encodeURIComponent(m.song_id)}` +
    `&time_s=${m.time_s}&index=${encodeURIComponent(res.index)}`;
  try {
    const a = await api(url);
    if (state.result !== res) return;          // a newer query came meanwhile
    drawAlignment(a);
    const song = a.song ? "" : " (the song's audio is not available: your recording only)";
    cap.textContent = `Pitch (semitones) of your recording (orange, moved ${a.offset_st.toFixed(1)} st) over ` +
      `${a.title || a.song_id} (grey) from ${fmtTime(a.time_s)}${song}.`;
  } catch (e) {
    cap.textContent = `No picture: ${e.message}`;
  }
}

function drawAlignment(a) {
  const c = $("alignment");
  const g = c.getContext("2d");
  const W = c.width, H = c.height, L = 44, R = 12, T = 14, B = 30;
  g.clearRect(0, 0, W, H);
  const q = a.query, s = a.song || { t: [], st: [] };
  const qst = q.st.map((v) => v + a.offset_st);
  const ts = [...q.t, ...s.t], vs = [...qst, ...s.st];
  const t0 = Math.min(0, ...ts), t1 = Math.max(a.duration_s, ...ts);
  let v0 = vs.length ? Math.min(...vs) : -6, v1 = vs.length ? Math.max(...vs) : 6;
  if (v1 - v0 < 6) { const mid = (v0 + v1) / 2; v0 = mid - 3; v1 = mid + 3; }
  v0 -= 1; v1 += 1;
  const x = (t) => L + ((t - t0) / (t1 - t0 || 1)) * (W - L - R);
  const y = (v) => T + (1 - (v - v0) / (v1 - v0)) * (H - T - B);
  g.font = "12px system-ui, sans-serif";
  g.strokeStyle = "#eef0f3"; g.fillStyle = "#667085"; g.lineWidth = 1;
  for (let v = Math.ceil(v0 / 2) * 2; v <= v1; v += 2) {
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(W - R, y(v)); g.stroke();
    g.fillText(`${v > 0 ? "+" : ""}${v}`, 6, y(v) + 4);
  }
  const step = t1 - t0 > 12 ? 2 : 1;
  for (let t = Math.ceil(t0); t <= t1; t += step) {
    g.beginPath(); g.moveTo(x(t), T); g.lineTo(x(t), H - B); g.stroke();
    g.fillText(fmtTime(a.time_s + t).replace(/\.00$/, ""), x(t) - 14, H - 10);
  }
  // the matched segment
  g.fillStyle = "rgba(217, 72, 15, 0.06)";
  g.fillRect(x(0), T, x(a.duration_s) - x(0), H - T - B);
  const line = (tt, vv, color, width) => {
    g.strokeStyle = color; g.lineWidth = width; g.beginPath();
    for (let i = 0; i < tt.length; i++) {
      const gap = i > 0 && tt[i] - tt[i - 1] > 0.25;
      if (i === 0 || gap) g.moveTo(x(tt[i]), y(vv[i])); else g.lineTo(x(tt[i]), y(vv[i]));
    }
    g.stroke();
  };
  line(s.t, s.st, "#98a2b3", 5);
  line(q.t, qst, "#d9480f", 2.5);
}

// ---- wiring -----------------------------------------------------------------------------------------

$("record").addEventListener("click", () => (state.rec ? stopRecording() : startRecording()));
$("file").addEventListener("change", (e) => {
  const f = e.target.files[0];
  if (f) search(f, f.name);
  e.target.value = "";
});
$("index").addEventListener("change", fillRerankers);
$("token-save").addEventListener("click", () => {
  state.token = $("token").value.trim();
  localStorage.setItem("chad-token", state.token);
  $("token-box").hidden = true;
  setStatus("Token saved: record or choose a file again.");
});
loadHealth();
