// pixelforge studio: renders every tab from /api/tabs; no framework, no build step.
"use strict";

const $ = (tag, attrs = {}, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid != null) el.append(kid);
  return el;
};

async function getJSON(url) {
  const r = await fetch(url);
  let body;
  try { body = await r.json(); } catch (e) { throw new Error(`${r.status} ${r.statusText}`); }
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

function showError(where, message) {
  where.replaceChildren($("div", { class: "error", role: "alert", text: message }));
}

// Tiny pictures (28 px digits) are shown scaled up with crisp pixels.
function pixImage(src, alt) {
  const img = $("img", { class: "pix", src, alt });
  img.addEventListener("load", () => {
    const w = img.naturalWidth;
    if (w && w < 320) img.style.width = `${w * Math.ceil(320 / w)}px`;
  });
  return img;
}

// ---- forms --------------------------------------------------------------------------------
function buildField(f, state) {
  const id = `${state.id}-${f.name}`;
  const row = $("div", { class: "field", "data-name": f.name });
  let input;
  if (f.type === "run") {
    input = $("select", { id, name: f.name });
    state.modelSelect = input;
    state.modelFamilies = f.families || [];
    state.modelDefault = f.default; // e.g. a shipped model, chosen until the user picks another
    input.addEventListener("change", () => updateDependent(state));
  } else if (f.type === "class") {
    input = $("select", { id, name: f.name });
    state.classSelect = input;
    state.classBlank = f.placeholder || "every class in turn";
  } else if (f.type === "select") {
    input = $("select", { id, name: f.name },
              (f.options || []).map(o => $("option", { value: o, text: o, selected: o === f.default })));
  } else if (f.type === "bool") {
    input = $("input", { id, name: f.name, type: "checkbox", checked: !!f.default });
  } else if (f.type === "int" || f.type === "float") {
    input = $("input", { id, name: f.name, type: "number", value: f.default, min: f.min, max: f.max,
                         step: f.step || (f.type === "int" ? 1 : "any"), placeholder: f.placeholder });
  } else if (f.type === "image") {
    input = $("input", { id, name: f.name, type: "file", accept: "image/*" });
    const preview = $("img", { class: "pix", alt: "", style: "display:none;max-width:160px" });
    input.addEventListener("change", () => {
      const file = input.files[0];
      if (!file) return;
      const url = URL.createObjectURL(file);
      preview.src = url; preview.style.display = "block";
      state.imageURL = url;
      if (state.mask) state.mask.setImage(url);
    });
    row.append($("label", { for: id, text: f.label }), input, $("span"), preview);
    if (f.help) row.append($("div", { class: "help", text: f.help }));
    return row;
  } else if (f.type === "mask") {
    state.mask = maskEditor(state.id);
    row.append($("label", { text: f.label }), state.mask.el);
    if (f.help) row.append($("div", { class: "help", text: f.help }));
    return row;
  } else {
    input = $("input", { id, name: f.name, type: "text", value: f.default ?? "" });
  }
  row.append($("label", { for: id, text: f.label }), input);
  if (f.help) row.append($("div", { class: "help", text: f.help }));
  if (f.only_for) row.dataset.onlyFor = f.only_for.join(",");
  return row;
}

async function loadModels(state) {
  const sel = state.modelSelect;
  if (!sel) return;
  let models = [];
  try {
    models = (await getJSON(`/api/models?family=${encodeURIComponent(state.modelFamilies.join(","))}`)).models;
  } catch (e) { showError(state.result, `cannot list models: ${e.message}`); }
  const keep = sel.value; // read after the request: the user may have picked a model meanwhile
  state.models = Object.fromEntries(models.map(m => [m.id, m]));
  sel.replaceChildren(...models.map(m => $("option", { value: m.id, text: `${m.name} · ${m.family}${m.data ? " · " + m.data : ""}` })));
  if (!models.length) {
    sel.append($("option", { value: "", text: `no ${state.modelFamilies.join("/")} run found — train one first` }));
  }
  if (keep && state.models[keep]) sel.value = keep;
  else if (state.modelDefault && state.models[state.modelDefault]) sel.value = state.modelDefault;
  updateDependent(state);
}

function updateDependent(state) {
  const m = state.models?.[state.modelSelect?.value];
  if (state.classSelect) {
    const keep = state.classSelect.value;
    const classes = m && m.num_classes ? (m.classes.length ? m.classes : [...Array(m.num_classes).keys()].map(String)) : [];
    state.classSelect.replaceChildren($("option", { value: "", text: classes.length ? state.classBlank : "—" }),
      ...classes.map(c => $("option", { value: c, text: c })));
    if (classes.includes(keep)) state.classSelect.value = keep;
    state.classSelect.closest(".field").classList.toggle("hidden", !classes.length);
  }
  for (const row of state.form.querySelectorAll(".field[data-only-for]")) {
    const fams = row.dataset.onlyFor.split(",");
    row.classList.toggle("hidden", !m || !fams.includes(m.family));
  }
}

function maskEditor(id) {
  const size = 256;
  const canvas = $("canvas", { width: size, height: size, "data-mask": id });
  const ctx = canvas.getContext("2d");
  const paint = document.createElement("canvas"); // the mask itself: transparent, red where painted
  paint.width = paint.height = size;
  const pctx = paint.getContext("2d");
  const brush = $("input", { type: "range", min: 4, max: 80, value: 32, "aria-label": "brush size" });
  let image = null, down = false, painted = false;
  function redraw() {
    ctx.fillStyle = "#bbb"; ctx.fillRect(0, 0, size, size);
    if (image) {
      const s = Math.min(image.width, image.height); // the server centre-crops the same way
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(image, (image.width - s) / 2, (image.height - s) / 2, s, s, 0, 0, size, size);
    } else {
      ctx.fillStyle = "#555"; ctx.font = "14px sans-serif"; ctx.fillText("choose an image, then paint", 40, size / 2);
    }
    ctx.globalAlpha = 0.6; ctx.drawImage(paint, 0, 0); ctx.globalAlpha = 1;
  }
  function dab(ev) {
    const r = canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left) * size / r.width, y = (ev.clientY - r.top) * size / r.height;
    pctx.fillStyle = "#e03131"; pctx.beginPath(); pctx.arc(x, y, brush.value / 2, 0, 2 * Math.PI); pctx.fill();
    painted = true; redraw();
  }
  canvas.addEventListener("pointerdown", ev => { down = true; canvas.setPointerCapture(ev.pointerId); dab(ev); });
  canvas.addEventListener("pointermove", ev => { if (down) dab(ev); });
  canvas.addEventListener("pointerup", () => { down = false; });
  const clear = $("button", { type: "button", text: "clear", onclick: () => { pctx.clearRect(0, 0, size, size); painted = false; redraw(); } });
  redraw();
  return {
    el: $("div", { class: "mask-editor" }, canvas, $("div", { class: "tools" }, "brush", brush, clear)),
    setImage(url) { const im = new Image(); im.onload = () => { image = im; redraw(); }; im.src = url; },
    painted: () => painted,
    // White = keep, black = fill: the convention of `pixelforge inpaint --mask`.
    blob() {
      const out = document.createElement("canvas"); out.width = out.height = size;
      const o = out.getContext("2d");
      o.fillStyle = "#fff"; o.fillRect(0, 0, size, size);
      const data = pctx.getImageData(0, 0, size, size).data;
      const img = o.getImageData(0, 0, size, size);
      for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0) { img.data[i] = img.data[i + 1] = img.data[i + 2] = 0; }
      o.putImageData(img, 0, 0);
      return new Promise(res => out.toBlob(res, "image/png"));
    },
  };
}

// A background action answers with a job id: poll it, showing its progress, until it ends.
async function followJob(id, where) {
  const bar = $("progress", { max: 1, value: 0 });
  const note = $("span", { class: "job-note", text: "starting" });
  where.replaceChildren($("div", { class: "busy job" }, bar, " ", note));
  for (;;) {
    await new Promise(done => setTimeout(done, 1000));
    const job = await getJSON(`/api/jobs/${id}`);
    if (job.state === "done") return job.result;
    if (job.state === "error") throw new Error(job.error);
    bar.value = job.progress;
    note.textContent = `${Math.round(100 * job.progress)}% · ${job.note}`;
  }
}

function renderResult(where, res) {
  const figs = res.images.map(im => $("figure", {},
    pixImage(im.url, im.title),
    $("figcaption", {}, $("span", { text: im.title }), $("a", { href: `${im.url}?download=1`, download: "", text: "download" }))));
  const parts = [$("div", { class: "images" }, figs)];
  const entries = Object.entries(res.metrics || {});
  if (entries.length) {
    parts.push($("table", { class: "metrics" }, entries.map(([k, v]) => $("tr", {}, $("th", { text: k }), $("td", { text: String(v) })))));
  }
  if (res.message) parts.push($("p", { text: res.message }));
  where.className = `result ${res.layout || "grid"}`;
  where.replaceChildren(...parts);
}

function buildAction(tab, action) {
  const state = { id: `${tab.name}-${action.name}` };
  const form = $("form", { class: "action", "data-action": action.name });
  state.form = form;
  state.result = $("div", { class: "result", "aria-live": "polite" });
  const button = $("button", { class: "go", type: "submit", text: action.label });
  form.append($("h2", { text: action.label }), ...action.fields.map(f => buildField(f, state)), button, state.result);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const data = new FormData();
    for (const f of action.fields) {
      const el = form.querySelector(`[name="${f.name}"]`);
      if (f.type === "mask") {
        if (state.mask.painted()) data.append(f.name, await state.mask.blob(), "mask.png");
      } else if (f.type === "image") {
        if (el.files[0]) data.append(f.name, el.files[0], el.files[0].name);
      } else if (f.type === "bool") {
        data.append(f.name, el.checked ? "true" : "false");
      } else if (!form.querySelector(`[data-name="${f.name}"]`).classList.contains("hidden")) {
        data.append(f.name, el.value);
      }
    }
    button.disabled = true;
    state.result.className = "result";
    state.result.replaceChildren($("div", { class: "busy", text: "working…" }));
    try {
      const r = await fetch(`/api/tabs/${tab.name}/${action.name}`, { method: "POST", body: data });
      let body;
      try { body = await r.json(); } catch (e) { throw new Error(`the server answered ${r.status} ${r.statusText}`); }
      if (!r.ok) throw new Error(body.error || `${r.status}`);
      renderResult(state.result, body.job ? await followJob(body.job, state.result) : body);
    } catch (e) {
      showError(state.result, e.message || String(e));
    } finally {
      button.disabled = false;
    }
  });
  form.addEventListener("reload", () => loadModels(state));
  loadModels(state);
  return form;
}

// ---- runs -----------------------------------------------------------------------------------
function chart(name, points) {
  const W = 300, H = 150, P = 28;
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = x => P + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - P - 6);
  const sy = y => H - P + 8 - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (H - P - 4);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("data-metric", name);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    svg.append(e); return e;
  };
  add("rect", { x: P, y: 4, width: W - P - 6, height: H - P - 4, fill: "none", stroke: "#ddd" });
  add("polyline", { fill: "none", stroke: "#3b5bdb", "stroke-width": 1.5, points: points.map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") });
  if (points.length <= 30) for (const p of points) add("circle", { cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: 2.5, fill: "#3b5bdb" });
  const fmt = v => Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3);
  add("text", { x: 2, y: 12, "font-size": 10, fill: "#666" }, fmt(y1));
  add("text", { x: 2, y: H - P + 8, "font-size": 10, fill: "#666" }, fmt(y0));
  add("text", { x: P, y: H - 6, "font-size": 10, fill: "#666" }, `step ${x0}`);
  add("text", { x: W - 6, y: H - 6, "font-size": 10, fill: "#666", "text-anchor": "end" }, `${x1}`);
  return $("div", { class: "chart" }, $("div", { text: name }), svg);
}

function buildRuns(panel) {
  const list = $("div", { class: "run-list" });
  const detail = $("div", { class: "run-detail" }, $("p", { class: "desc", text: "Choose a run." }));
  const watch = $("input", { type: "checkbox", id: "runs-watch" });
  panel.append($("div", { class: "runs" }, $("div", {}, $("label", {}, watch, " watch (refresh every 5 s)"), list), detail));
  let selected = null, sampleIndex = null, selectedStudy = null;
  async function refreshList() {
    try {
      const { runs, studies, runs_dir } = await getJSON("/api/runs");
      const parts = [runs.length ? $("table", { class: "list" },
        $("tr", {}, $("th", { text: "run" }), $("th", { text: "family" }), $("th", { text: "step" })),
        runs.map(r => $("tr", { class: r.id === selected ? "sel" : "", "data-run": r.id, onclick: () => { selected = r.id; selectedStudy = null; sampleIndex = null; refreshList(); refreshDetail(); } },
          $("td", { text: r.name }), $("td", { text: r.family }), $("td", { text: r.step ?? "—" }))))
        : $("p", { text: `No runs in ${runs_dir}/ yet.` })];
      if (studies.length) parts.push($("h3", { text: "Augmentation studies" }), $("table", { class: "list" },
        $("tr", {}, $("th", { text: "study" }), $("th", { text: "data" }), $("th", { text: "per class" })),
        studies.map(s => $("tr", { class: s.id === selectedStudy ? "sel" : "", "data-study": s.id, onclick: () => { selected = null; selectedStudy = s.id; refreshList(); showStudy(s); } },
          $("td", { text: s.id }), $("td", { text: s.data }), $("td", { text: s.budgets.join(", ") })))));
      list.replaceChildren(...parts);
    } catch (e) { showError(list, e.message); }
  }
  function showStudy(s) {
    const pct = v => `${(100 * v).toFixed(2)}%`;
    const parts = [$("h3", { text: `${s.id} — does generated data help ${s.data}? (${s.seeds} seed(s) per budget)` })];
    if (s.plot) parts.push($("img", { src: `/files/runs/${s.plot}?t=${Date.now()}`, alt: "test accuracy of every arm by budget", class: "study-plot", style: "max-width:700px" }));
    for (const row of s.rows) {
      parts.push($("h3", { text: `${row.per_class} real images per class` }), $("table", { class: "metric-table study-table" },
        $("tr", {}, ["arm", "kind", "steps", "validation", "test"].map(h => $("th", { text: h }))),
        row.arms.map(a => $("tr", {}, [a.arm, a.kind, a.steps, pct(a.val.mean), `${pct(a.test.mean)} ± ${pct(a.test.std)}`].map(v => $("td", { text: String(v) }))))));
      if (row.gain) parts.push($("p", { class: "verdict", text: `best generative (${row.best_generative}) − best classic (${row.best_classic}), both chosen on validation: ${(100 * row.gain.mean).toFixed(2)} ± ${(100 * row.gain.std).toFixed(2)} points on test; target ${row.target}: ${row.met ? "met" : "missed"}` }));
    }
    detail.replaceChildren(...parts);
  }
  async function refreshDetail() {
    if (!selected) return;
    let d;
    try { d = await getJSON(`/api/runs/${selected.split("/").map(encodeURIComponent).join("/")}`); }
    catch (e) { showError(detail, e.message); return; }
    const parts = [$("h3", { text: `${d.name} — ${d.family} on ${d.data || "?"}` })];
    const keys = Object.keys(d.series).sort((a, b) => (b.includes("loss") - a.includes("loss")) || a.localeCompare(b));
    parts.push($("h3", { text: "Curves" }), keys.length ? $("div", { class: "charts" }, keys.map(k => chart(k, d.series[k])))
                                                      : $("p", { class: "desc", text: "No metrics logged yet." }));
    if (d.samples.length) {
      if (sampleIndex == null || sampleIndex >= d.samples.length) sampleIndex = d.samples.length - 1;
      const label = $("span", { text: d.samples[sampleIndex].split("/").pop() });
      const img = pixImage(`/files/runs/${d.samples[sampleIndex]}`, "samples");
      img.classList.add("history-image");
      const slider = $("input", { type: "range", min: 0, max: d.samples.length - 1, value: sampleIndex, "aria-label": "epoch" });
      slider.addEventListener("input", () => {
        sampleIndex = +slider.value;
        img.src = `/files/runs/${d.samples[sampleIndex]}`; label.textContent = d.samples[sampleIndex].split("/").pop();
      });
      parts.push($("h3", { text: `Samples across ${d.samples.length} epoch(s)` }), $("div", { class: "history" }, slider, label), img);
    }
    if (d.table.length) {
      parts.push($("h3", { text: "Metrics" }), $("table", { class: "metric-table" },
        $("tr", {}, ["metric", "last", "min", "max", "at step", "records"].map(h => $("th", { text: h }))),
        d.table.map(r => $("tr", {}, [r.metric, r.last, r.min, r.max, r.step, r.count].map(v => $("td", { text: typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : String(v) }))))));
    }
    for (const [file, ev] of Object.entries(d.evaluation)) {
      const rows = Object.entries(ev).filter(([, v]) => typeof v !== "object");
      parts.push($("h3", { text: file }), $("table", {}, rows.map(([k, v]) => $("tr", {}, $("th", { text: k }), $("td", { text: String(v) })))));
    }
    if (d.loss_png) parts.push($("h3", { text: "loss.png" }), $("img", { src: `/files/runs/${d.loss_png}?t=${Date.now()}`, alt: "loss curves", style: "max-width:640px" }));
    parts.push($("h3", { text: "Configuration" }), $("table", {}, Object.entries(d.config).map(([k, v]) => $("tr", {}, $("th", { text: k }), $("td", { text: JSON.stringify(v) })))));
    detail.replaceChildren(...parts);
  }
  setInterval(() => { if (watch.checked && panel.classList.contains("active")) { refreshList(); refreshDetail(); } }, 5000);
  panel.refresh = refreshList;
  refreshList();
}

// ---- tabs -----------------------------------------------------------------------------------
function select(name) {
  for (const b of document.querySelectorAll("nav button")) b.setAttribute("aria-selected", b.dataset.tab === name);
  for (const p of document.querySelectorAll("section.panel")) p.classList.toggle("active", p.dataset.tab === name);
  const panel = document.querySelector(`section.panel[data-tab="${name}"]`);
  if (panel && panel.refresh) panel.refresh();
  history.replaceState(null, "", `#${name}`);
}

async function main() {
  const panels = document.getElementById("panels"), nav = document.getElementById("tabs");
  let spec;
  try { spec = await getJSON("/api/tabs"); }
  catch (e) { showError(panels, `The studio server did not answer: ${e.message}`); return; }
  panels.replaceChildren();
  for (const tab of spec.tabs) {
    nav.append($("button", { role: "tab", "data-tab": tab.name, class: tab.available ? "" : "off", text: tab.title, onclick: () => select(tab.name) }));
    const panel = $("section", { class: "panel", "data-tab": tab.name, role: "tabpanel" }, $("p", { class: "desc", text: tab.description }));
    if (!tab.available) panel.append($("div", { class: "unavailable", role: "status", text: tab.message }));
    else if (tab.panel === "runs") buildRuns(panel);
    else {
      const actions = $("div", { class: "actions" }, tab.actions.map(a => buildAction(tab, a)));
      panel.append(actions);
      panel.refresh = () => { for (const f of panel.querySelectorAll("form.action")) f.dispatchEvent(new Event("reload")); };
    }
    panels.append(panel);
  }
  document.getElementById("footer").textContent =
    `Uploads up to ${spec.limits.upload_mb.toFixed(0)} MB and ${spec.limits.megapixels.toFixed(0)} megapixels.`;
  const wanted = location.hash.slice(1);
  select(spec.tabs.some(t => t.name === wanted) ? wanted : spec.tabs[0].name);
}

main();
