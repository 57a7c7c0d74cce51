/* effscale dashboard: plain JavaScript, hand-written SVG, no external libraries (works offline).
 *
 * Routes (hash): #/ lists studies; #/study/NAME shows one study. While a search runs, the page
 * refreshes every REFRESH_MS. Elements the browser test counts carry ids / classes:
 * #trial-table tr.trial-row, #candidate-map .cand, #flops-plot .pt, #curves-plot .curve,
 * #family-table tr.family-row; #view[data-ready="1"] once a render has finished.
 */
"use strict";

const REFRESH_MS = 3000;
const LIVE_STATUSES = new Set(["pending", "running", "starting", "cancelling"]);
const SVG_NS = "http://www.w3.org/2000/svg";
const TABLE_LIMIT = 1000;

let timer = null;
let renderSeq = 0;
const ui = { state: "", sort: "number" };

// ------------------------------------------------------------------------------------------
// DOM helpers (textContent only: names from the database are never parsed as HTML)

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

function title(text) { return s("title", { text }); }

// ------------------------------------------------------------------------------------------
// formatting

function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return Number(x).toFixed(digits);
}
function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%"; }
function human(n) {
  if (n === null || n === undefined) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toPrecision(3) + "G";
  if (a >= 1e6) return (n / 1e6).toPrecision(3) + "M";
  if (a >= 1e3) return (n / 1e3).toPrecision(3) + "k";
  return String(n);
}
function secs(x) {
  if (x === null || x === undefined) return "–";
  if (x < 60) return x.toFixed(1) + " s";
  if (x < 3600) return (x / 60).toFixed(1) + " min";
  return (x / 3600).toFixed(2) + " h";
}
function badge(status) { return h("span", { class: "badge " + status, text: status }); }

// viridis-like colour scale, t in [0, 1]
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(t) {
  if (t === null || t === undefined || Number.isNaN(t)) return "#d9dde5";
  t = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
  const i = Math.min(Math.floor(t), STOPS.length - 2), f = t - i;
  const c = STOPS[i].map((v, k) => Math.round(v + f * (STOPS[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
function scaleOf(values) {
  const v = values.filter((x) => x !== null && x !== undefined);
  if (!v.length) return () => null;
  const lo = Math.min(...v), hi = Math.max(...v);
  return (x) => (x === null || x === undefined ? null : hi > lo ? (x - lo) / (hi - lo) : 0.75);
}
const LINE_COLOURS = ["#2a62c9", "#d64545", "#2f9e63", "#b7791f", "#805ad5", "#0f8b8d", "#c05621", "#4a5568", "#d53f8c", "#3182ce"];

// ------------------------------------------------------------------------------------------
// data

async function api(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : res.statusText;
    const err = new Error(`${res.status}: ${detail}`);
    err.status = res.status;
    throw err;
  }
  return body;
}
const enc = encodeURIComponent;

// ------------------------------------------------------------------------------------------
// routing

function route() {
  const hash = decodeURIComponent(location.hash || "#/");
  const m = hash.match(/^#\/study\/(.+)$/);
  return m ? { page: "study", name: m[1] } : { page: "list" };
}

function schedule(live) {
  clearTimeout(timer);
  timer = null;
  document.getElementById("live").hidden = !live;
  if (live) timer = setTimeout(render, REFRESH_MS);
}

async function render() {
  const seq = ++renderSeq;
  const view = document.getElementById("view");
  const r = route();
  try {
    const node = r.page === "study" ? await studyPage(r.name) : await listPage();
    if (seq !== renderSeq) return; // a newer render started meanwhile
    const scroll = view.querySelector(".scroll");
    const keep = scroll ? scroll.scrollTop : 0;
    view.replaceChildren(node.el);
    const again = view.querySelector(".scroll");
    if (again) again.scrollTop = keep;
    view.dataset.ready = "1";
    view.dataset.page = r.page;
    schedule(node.live);
  } catch (err) {
    if (seq !== renderSeq) return;
    view.replaceChildren(h("p", { class: "error", text: String(err.message || err) }));
    view.dataset.ready = "error";
    schedule(false);
  }
}

window.addEventListener("hashchange", () => { ui.state = ""; ui.sort = "number"; render(); });
window.addEventListener("DOMContentLoaded", render);

// ------------------------------------------------------------------------------------------
// studies list

function progressBar(p, small) {
  const total = p.unique || 0;
  const done = total ? Math.min(p.done / total, 1) : p.fraction || 0;
  const run = total ? Math.min(p.running / total, 1 - done) : 0;
  return h("span", { class: "progress" + (small ? " small" : ""), title: `${p.done} done, ${p.running} running, ${p.left ?? "?"} left` },
    h("span", { class: "done", style: `width:${(100 * done).toFixed(1)}%` }),
    h("span", { class: "run", style: `left:${(100 * done).toFixed(1)}%;width:${(100 * run).toFixed(1)}%` }));
}

async function listPage() {
  const data = await api("/api/studies");
  const rows = data.studies.map((st) =>
    h("tr", { class: "study-row" },
      h("td", {}, h("a", { href: "#/study/" + enc(st.name), text: st.name })),
      h("td", { class: "left" }, badge(st.status)),
      h("td", { class: "left", text: st.baseline || "–" }),
      h("td", {}, progressBar(st.progress, true), ` ${st.progress.done}/${st.progress.unique ?? "?"}`),
      h("td", { text: st.best ? pct(st.best.val_top1) : "–" }),
      h("td", { text: st.n_trials }),
      h("td", { text: st.has_family ? "yes" : "–" }),
      h("td", { class: "left muted", text: st.created_at ? st.created_at.replace("T", " ").slice(0, 19) : "–" })));
  const el = h("div", {},
    h("h1", { text: "Studies" }),
    data.studies.length
      ? h("div", { class: "card" }, h("table", { id: "studies-table" },
          h("thead", {}, h("tr", {}, ["study", "status", "baseline", "progress", "best top-1", "trials", "family", "created"].map((t, i) => h("th", { class: i < 3 || i === 7 ? "left" : "", text: t })))),
          h("tbody", {}, rows)))
      : h("p", { class: "muted", text: "No studies yet: run `effscale search ... --storage URL` or POST /api/searches." }));
  return { el, live: data.studies.some((st) => LIVE_STATUSES.has(st.status)) };
}

// ------------------------------------------------------------------------------------------
// one study

async function studyPage(name) {
  const base = "/api/studies/" + enc(name);
  const q = new URLSearchParams({ sort: ui.sort, limit: String(TABLE_LIMIT) });
  if (ui.state) q.set("state", ui.state);
  const [study, page, all, cands, curves, family] = await Promise.all([
    api(base),
    api(base + "/trials?" + q.toString()),
    ui.state ? api(base + "/trials?limit=" + TABLE_LIMIT) : null,
    api(base + "/candidates"),
    api(base + "/curves"),
    api(base + "/family").catch((e) => (e.status === 404 ? null : Promise.reject(e))),
  ]);
  const trials = (all || page).trials;
  const best = study.best;
  const cfg = study.config || {};
  const budget = cfg.budget ? Object.entries(cfg.budget).map(([k, v]) => `${v} ${k}`).join(", ") : "–";
  const p = study.progress;

  const header = h("div", { class: "card" },
    h("div", { class: "row" },
      h("h1", { text: study.name }), badge(study.status),
      h("span", { class: "kv" }, "baseline", h("b", { text: study.baseline || "–" })),
      h("span", { class: "kv" }, "data", h("b", { text: cfg.data || "–" })),
      h("span", { class: "kv" }, "constraint", h("b", { text: `${cfg.constraint || "?"} ratio ${cfg.target_ratio ?? "?"} ± ${cfg.tolerance ?? "?"}` })),
      h("span", { class: "kv" }, "budget", h("b", { text: budget }))),
    h("div", { class: "row", style: "margin-top:8px" },
      progressBar(p, false),
      h("span", { id: "progress-text", text: `${p.done} done · ${p.running} running · ${p.left ?? "?"} left of ${p.unique ?? "?"} networks` }),
      h("span", { class: "muted", text: `grid ${p.grid ?? "?"} · feasible ${p.feasible ?? "?"} · aliases ${p.aliases ?? "?"}` }),
      h("span", { class: "kv" }, "best so far",
        h("b", { id: "best-so-far", text: best ? `${pct(best.val_top1)} at α=${fmt(best.alpha, 2)} β=${fmt(best.beta, 2)} γ=${fmt(best.gamma, 2)} (trial ${best.number})` : "–" }))),
    study.error ? h("p", { class: "error", text: study.error }) : null);

  const plots = h("div", { class: "grid2" },
    h("div", { class: "card" }, h("h2", { text: "Candidates: α × β per γ, coloured by top-1" }), candidateMap(cands)),
    h("div", { class: "card" }, h("h2", { text: "Top-1 against measured FLOPs" }), flopsPlot(trials, best)),
    h("div", { class: "card" }, h("h2", { text: "Learning curves (validation top-1 per epoch)" }), curvesPlot(curves.curves)),
    h("div", { class: "card" }, h("h2", {}, "Family B0..B7 ", family ? h("a", { href: base + "/family/download", text: "download JSON" }) : null), familyTable(family, study)));

  const el = h("div", {}, header, plots, h("div", { class: "card", style: "margin-top:14px" }, trialTable(page, best)));
  return { el, live: LIVE_STATUSES.has(study.status) };
}

// ------------------------------------------------------------------------------------------
// trial table

function trialTable(page, best) {
  const stateSel = h("select", { id: "state-filter", onchange: (e) => { ui.state = e.target.value; render(); } },
    ["", "complete", "pruned", "fail", "running", "waiting"].map((v) => h("option", { value: v, selected: v === ui.state, text: v || "all states" })));
  const sortSel = h("select", { id: "sort", onchange: (e) => { ui.sort = e.target.value; render(); } },
    [["number", "trial #"], ["-value", "top-1 (best first)"], ["value", "top-1 (worst first)"], ["flops", "FLOPs"], ["-flops", "FLOPs (largest first)"]]
      .map(([v, t]) => h("option", { value: v, selected: v === ui.sort, text: t })));
  const cols = ["#", "α", "β", "γ", "d", "w", "res", "measured ratio", "formula ratio", "params", "FLOPs", "top-1", "time", "state"];
  const rows = page.trials.map((t) =>
    h("tr", { class: "trial-row" + (best && t.number === best.number ? " best" : ""), "data-number": t.number },
      h("td", { text: t.number }),
      h("td", { text: fmt(t.alpha, 3) }), h("td", { text: fmt(t.beta, 3) }), h("td", { text: fmt(t.gamma, 3) }),
      h("td", { text: fmt(t.depth, 3) }), h("td", { text: fmt(t.width, 3) }), h("td", { text: t.resolution ?? "–" }),
      h("td", { text: t.flops_ratio === null ? "–" : fmt(t.flops_ratio, 3) + "×" }),
      h("td", { text: t.formula_ratio === null ? "–" : fmt(t.formula_ratio, 3) + "×" }),
      h("td", { text: human(t.params) }), h("td", { text: human(t.flops) }),
      h("td", { text: pct(t.val_top1) }), h("td", { text: secs(t.train_seconds ?? t.duration_s) }),
      h("td", {}, badge(t.state))));
  return h("div", {},
    h("div", { class: "controls" }, h("h2", { style: "margin:0", text: "Trials" }), stateSel, sortSel,
      h("span", { class: "muted", id: "trial-count", text: `${page.trials.length} of ${page.total} shown` })),
    h("div", { class: "scroll" },
      h("table", { id: "trial-table" },
        h("thead", {}, h("tr", {}, cols.map((c) => h("th", { text: c })))),
        h("tbody", {}, rows))));
}

// ------------------------------------------------------------------------------------------
// candidate map: one panel per γ, α on x, β on y

function candidateMap(data) {
  const cands = data.candidates || [];
  if (!cands.length) return h("p", { class: "muted", text: "No candidates recorded yet." });
  const A = data.grid.alpha, B = data.grid.beta, G = data.grid.gamma;
  const tops = scaleOf(cands.map((c) => c.val_top1));
  const byArch = {};
  for (const c of cands) if (c.representative && c.val_top1 !== null) byArch[c.arch_id] = c.val_top1;
  const cell = Math.max(16, Math.min(54, Math.floor(260 / Math.max(A.length, B.length))));
  const pad = { l: 40, t: 22, b: 32, r: 10 };
  const pw = pad.l + cell * A.length + pad.r, ph = pad.t + cell * B.length + pad.b;
  const perRow = Math.max(1, Math.min(G.length, Math.floor(720 / pw)));
  const rowsN = Math.ceil(G.length / perRow);
  const svg = s("svg", { id: "candidate-map", viewBox: `0 0 ${pw * perRow} ${ph * rowsN}`, width: pw * perRow, height: ph * rowsN, "data-count": cands.length });
  const near = (v, arr) => arr.findIndex((x) => Math.abs(x - v) < 1e-6);
  G.forEach((g, gi) => {
    const ox = (gi % perRow) * pw, oy = Math.floor(gi / perRow) * ph;
    const panel = s("g", { transform: `translate(${ox},${oy})`, class: "panel" });
    panel.appendChild(s("text", { x: pad.l, y: 14, class: "panel-title", text: `γ = ${g}` }));
    // feasible band: cells whose candidate meets the FLOPs constraint
    for (const c of cands) {
      if (Math.abs(c.gamma - g) > 1e-6 || !c.feasible) continue;
      const i = near(c.alpha, A), j = near(c.beta, B);
      if (i < 0 || j < 0) continue;
      panel.appendChild(s("rect", { class: "band", x: pad.l + i * cell, y: pad.t + (B.length - 1 - j) * cell, width: cell, height: cell }));
    }
    A.forEach((a, i) => panel.appendChild(s("text", { x: pad.l + (i + 0.5) * cell, y: pad.t + B.length * cell + 12, "text-anchor": "middle", text: a })));
    B.forEach((b, j) => panel.appendChild(s("text", { x: pad.l - 4, y: pad.t + (B.length - 1 - j + 0.5) * cell + 4, "text-anchor": "end", text: b })));
    panel.appendChild(s("text", { x: pad.l + (A.length * cell) / 2, y: pad.t + B.length * cell + 26, "text-anchor": "middle", text: "α (depth)" }));
    panel.appendChild(s("text", { x: 8, y: pad.t + (B.length * cell) / 2, transform: `rotate(-90 8 ${pad.t + (B.length * cell) / 2})`, "text-anchor": "middle", text: "β (width)" }));
    for (const c of cands) {
      if (Math.abs(c.gamma - g) > 1e-6) continue;
      const i = near(c.alpha, A), j = near(c.beta, B);
      if (i < 0 || j < 0) continue;
      const cx = pad.l + (i + 0.5) * cell, cy = pad.t + (B.length - 1 - j + 0.5) * cell;
      const top = c.val_top1 !== null ? c.val_top1 : byArch[c.arch_id] ?? null;
      let cls = "cand " + (c.feasible ? "feasible" : "infeasible");
      if (c.alias) cls += " alias";
      if (c.feasible && top === null) cls += " pending";
      const fill = c.feasible && top !== null ? colour(tops(top)) : null;
      const tip = `α=${c.alpha} β=${c.beta} γ=${c.gamma}\nd=${fmt(c.depth, 3)} w=${fmt(c.width, 3)} res=${c.resolution}\n` +
        `measured ${fmt(c.flops_ratio, 3)}× · formula ${fmt(c.formula_ratio, 3)}×\n` +
        (c.feasible ? (c.alias ? "alias: same network as another candidate\n" : "") + `top-1 ${pct(top)}${c.trial_number !== null ? " (trial " + c.trial_number + ")" : ""}` : "outside the FLOPs band");
      panel.appendChild(s("circle", { class: cls, cx, cy, r: cell * 0.36, fill, "data-alpha": c.alpha, "data-beta": c.beta, "data-gamma": c.gamma }, title(tip)));
      if (c.alias) panel.appendChild(s("text", { class: "alias-mark", x: cx, y: cy + 3.5, "text-anchor": "middle", text: "=" }));
    }
    svg.appendChild(panel);
  });
  const vals = cands.map((c) => c.val_top1).filter((v) => v !== null);
  const lo = vals.length ? Math.min(...vals) : null, hi = vals.length ? Math.max(...vals) : null;
  const legend = h("div", { class: "legend" },
    h("span", {}, h("span", { class: "swatch band" }), "feasible band" + (data.target_ratio ? ` (${data.constraint} ratio ${data.target_ratio} ± ${data.tolerance})` : "")),
    h("span", {}, h("span", { class: "swatch inf" }), "infeasible"),
    h("span", {}, h("span", { class: "swatch alias", style: "background:#d9dde5" }), "= alias (same network as a trained candidate)"),
    h("span", {}, "top-1 ", pct(lo), " ", h("span", { class: "colorbar", style: `background:linear-gradient(90deg,${[0, 0.25, 0.5, 0.75, 1].map(colour).join(",")})` }), " ", pct(hi)));
  return h("div", {}, svg, legend);
}

// ------------------------------------------------------------------------------------------
// shared axes

function axes(svg, box, xs, ys, xLabel, yLabel, xFmt, yFmt) {
  const g = s("g", { class: "axis" });
  for (const t of ys.ticks) {
    const y = ys.map(t);
    g.appendChild(s("line", { class: "gridline", x1: box.l, x2: box.r, y1: y, y2: y }));
    g.appendChild(s("text", { x: box.l - 5, y: y + 4, "text-anchor": "end", text: yFmt(t) }));
  }
  for (const t of xs.ticks) {
    const x = xs.map(t);
    g.appendChild(s("line", { x1: x, x2: x, y1: box.b, y2: box.b + 4 }));
    g.appendChild(s("text", { x, y: box.b + 16, "text-anchor": "middle", text: xFmt(t) }));
  }
  g.appendChild(s("path", { d: `M${box.l},${box.t}V${box.b}H${box.r}`, fill: "none" }));
  g.appendChild(s("text", { x: (box.l + box.r) / 2, y: box.b + 30, "text-anchor": "middle", text: xLabel }));
  g.appendChild(s("text", { x: 12, y: (box.t + box.b) / 2, transform: `rotate(-90 12 ${(box.t + box.b) / 2})`, "text-anchor": "middle", text: yLabel }));
  svg.appendChild(g);
}

function linear(lo, hi, a, b, n = 5) {
  if (!(hi > lo)) { const m = lo || 0; lo = m - (Math.abs(m) * 0.05 || 0.5); hi = m + (Math.abs(m) * 0.05 || 0.5); }
  const span = hi - lo;
  lo -= span * 0.05; hi += span * 0.05;
  const step0 = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => x >= step0) || step0;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) ticks.push(Number(t.toPrecision(12)));
  return { map: (v) => a + ((v - lo) / (hi - lo)) * (b - a), ticks };
}

// ------------------------------------------------------------------------------------------
// top-1 against measured FLOPs

function flopsPlot(trials, best) {
  const pts = trials.filter((t) => t.val_top1 !== null && t.flops !== null);
  const W = 560, H = 300, box = { l: 62, r: W - 12, t: 12, b: H - 40 };
  const svg = s("svg", { id: "flops-plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, "data-count": pts.length });
  if (!pts.length) {
    svg.appendChild(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "no trial has reported top-1 yet" }));
    return svg;
  }
  const xs = linear(Math.min(...pts.map((t) => t.flops)), Math.max(...pts.map((t) => t.flops)), box.l, box.r);
  const ys = linear(Math.min(...pts.map((t) => t.val_top1)), Math.max(...pts.map((t) => t.val_top1)), box.b, box.t);
  axes(svg, box, xs, ys, "measured FLOPs (fvcore)", "validation top-1", human, pct);
  const sc = scaleOf(pts.map((t) => t.val_top1));
  for (const t of pts) {
    const cx = xs.map(t.flops), cy = ys.map(t.val_top1);
    svg.appendChild(s("circle", { class: "pt " + t.state, cx, cy, r: 5, fill: colour(sc(t.val_top1)), "data-number": t.number },
      title(`trial ${t.number} (${t.state}): top-1 ${pct(t.val_top1)}, ${human(t.flops)} FLOPs\nα=${t.alpha} β=${t.beta} γ=${t.gamma}`)));
    if (best && t.number === best.number) svg.appendChild(s("circle", { class: "best-ring", cx, cy, r: 9 }, title("best so far")));
  }
  return svg;
}

// ------------------------------------------------------------------------------------------
// learning curves

function curvesPlot(curves) {
  const withPts = curves.filter((c) => c.points.some((p) => p.val_top1 !== null));
  const W = 560, H = 300, box = { l: 62, r: W - 12, t: 12, b: H - 40 };
  const svg = s("svg", { id: "curves-plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, "data-count": withPts.length });
  if (!withPts.length) {
    svg.appendChild(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "no epoch finished yet" }));
    return svg;
  }
  const all = withPts.flatMap((c) => c.points.filter((p) => p.val_top1 !== null));
  const maxEpoch = Math.max(...all.map((p) => p.epoch));
  const xs = linear(Math.min(1, ...all.map((p) => p.epoch)), Math.max(maxEpoch, 1), box.l, box.r, Math.min(6, Math.max(2, maxEpoch)));
  xs.ticks = xs.ticks.filter((t) => Number.isInteger(t));
  const ys = linear(Math.min(...all.map((p) => p.val_top1)), Math.max(...all.map((p) => p.val_top1)), box.b, box.t);
  axes(svg, box, xs, ys, "epoch", "validation top-1", String, pct);
  withPts.forEach((c, k) => {
    const col = LINE_COLOURS[c.number % LINE_COLOURS.length];
    const pts = c.points.filter((p) => p.val_top1 !== null);
    const d = pts.map((p, i) => `${i ? "L" : "M"}${xs.map(p.epoch).toFixed(1)},${ys.map(p.val_top1).toFixed(1)}`).join("");
    const g = s("g", { "data-number": c.number }, title(`trial ${c.number} (${c.state}): ${pts.map((p) => pct(p.val_top1)).join(" → ")}`));
    g.appendChild(s("path", { class: "curve " + c.state, d, stroke: col, "stroke-dasharray": c.state === "pruned" ? "4 3" : null }));
    for (const p of pts) g.appendChild(s("circle", { cx: xs.map(p.epoch), cy: ys.map(p.val_top1), r: 2.5, fill: col }));
    svg.appendChild(g);
  });
  return svg;
}

// ------------------------------------------------------------------------------------------
// family table

function familyTable(family, study) {
  if (!family) {
    return h("p", { class: "muted", id: "family-missing", text: LIVE_STATUSES.has(study.status) ? "The family is emitted when the search completes." : "No family was saved for this study." });
  }
  const c = family.coefficients || {};
  const rows = family.members.map((m) =>
    h("tr", { class: "family-row" },
      h("td", { text: m.name }), h("td", { text: m.phi }), h("td", { text: fmt(m.depth, 3) }), h("td", { text: fmt(m.width, 3) }),
      h("td", { text: m.resolution }), h("td", { text: human(m.params) }), h("td", { text: human(m.flops) }),
      h("td", { text: fmt(m.flops_ratio, 2) + "×" }), h("td", { text: fmt(m.formula_ratio, 2) + "×" })));
  return h("div", {},
    h("p", { class: "muted", text: `${family.baseline}: α=${c.alpha} β=${c.beta} γ=${c.gamma}, base resolution ${family.base_resolution}; FLOPs ${family.flops_convention || ""}` }),
    h("div", { style: "overflow-x:auto" }, h("table", { id: "family-table" },
      h("thead", {}, h("tr", {}, ["member", "φ", "depth d", "width w", "res", "params", "FLOPs", "measured /B0", "formula /B0"].map((t) => h("th", { text: t })))),
      h("tbody", {}, rows))));
}
