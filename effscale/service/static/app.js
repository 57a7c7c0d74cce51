/* effscale dashboard: plain JavaScript, hand-written SVG, no external libraries (works offline).
 *
 * Routes (hash): #/ lists studies and comparisons; #/study/NAME shows one search;
 * #/comparison/NAME one comparison. While a search runs, the page refreshes every REFRESH_MS.
 * Top-1 is shown as a mean ± standard error over a candidate's repeats, with n, never bare.
 * Elements the browser test counts carry ids / classes: #trial-table tr.trial-row,
 * #candidate-table tr.cand-row, #candidate-map .cand, #flops-plot .pt and .errbar,
 * #fidelity-plot .fpt, #curves-plot .curve, #family-table tr.family-row (a.export-link), #comparisons-table
 * tr.comparison-row, #comparison-plot g.series, #comparison-activations-plot g.series; #view[data-ready="1"]
 * once a render has finished.
 */
"use strict";

const REFRESH_MS = 3000;
const CURVE_LIMIT = 200; // learning curves drawn: the study's first trials (the plot's title says when it holds more)
const LIVE_STATUSES = new Set(["pending", "running", "starting", "cancelling"]);
const STANDING_COLOURS = { winner: "#d69e2e", tied: "#2a62c9", separated: "#98a1b3", failed: "#c53030", pruned: "#b7791f", untrained: "#d9dde5" };
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
// "47.9 ± 14.6% (n=2)": a mean top-1 with its standard error and n (se "n/a" below 2 repeats)
function meanSe(mean, se, n) {
  if (mean === null || mean === undefined) return "–";
  const err = se === null || se === undefined ? "n/a" : (100 * se).toFixed(1);
  return `${(100 * mean).toFixed(1)} ± ${err}% (n=${n ?? 0})`;
}
function triple(c) { return `(${c.alpha}, ${c.beta}, ${c.gamma})`; }
function keyOf(c) { return [c.alpha, c.beta, c.gamma].map((v) => Number(v).toFixed(6)).join(","); }
function tau(f) {
  if (!f || f.kendall_tau === null || f.kendall_tau === undefined) return "–";
  const [lo, hi] = f.tau_interval || [];
  return `${fmt(f.kendall_tau, 2)}` + (lo !== null && lo !== undefined && hi !== null && hi !== undefined ? ` [95% ${fmt(lo, 2)}, ${fmt(hi, 2)}]` : "");
}

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

// Each answer is kept with its ETag; a refresh asks with If-None-Match and reuses it on a 304.
const answers = new Map();
async function api(path) {
  const headers = { Accept: "application/json" };
  const held = answers.get(path);
  if (held) headers["If-None-Match"] = held.etag;
  const res = await fetch(path, { headers });
  if (res.status === 304 && held) return structuredClone(held.body);
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  const etag = res.headers.get("ETag");
  if (res.ok && etag) answers.set(path, { etag, body: structuredClone(body) });
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
  const m = hash.match(/^#\/(study|comparison)\/(.+)$/);
  return m ? { page: m[1], name: m[2] } : { page: "list" };
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
    const page = { study: studyPage, comparison: comparisonPage, list: listPage }[r.page];
    const node = await page(r.name);
    if (seq !== renderSeq) return; // a newer render started meanwhile
    const scroll = view.querySelector(".scroll.trials");
    const keep = scroll ? scroll.scrollTop : 0;
    view.replaceChildren(node.el);
    const again = view.querySelector(".scroll.trials");
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
  const done = Math.min(p.fraction || 0, 1);
  const run = p.running ? Math.min(0.04, 1 - done) : 0;
  return h("span", { class: "progress" + (small ? " small" : ""), title: `${p.networks_done} of ${p.unique ?? "?"} networks trained; ${p.done} trials done, ${p.running} running, ${p.left ?? "?"} networks not started` },
    h("span", { class: "done", style: `width:${(100 * done).toFixed(1)}%` }),
    h("span", { class: "run", style: `left:${(100 * done).toFixed(1)}%;width:${(100 * run).toFixed(1)}%` }));
}

async function listPage() {
  const [data, comps] = await Promise.all([api("/api/studies"), api("/api/comparisons")]);
  const rows = data.studies.map((st) =>
    h("tr", { class: "study-row" },
      h("td", {}, h("a", { href: "#/study/" + enc(st.name), text: st.name })),
      h("td", { class: "left" }, badge(st.status)),
      h("td", { class: "left", text: st.baseline || "–" }),
      h("td", {}, progressBar(st.progress, true), ` ${st.progress.networks_done}/${st.progress.unique ?? "?"}`),
      h("td", { class: "left", text: st.best ? triple(st.best) : "–" }),
      h("td", { text: st.best ? meanSe(st.best.val_top1_mean, st.best.val_top1_stderr, st.best.repeats) : "–",
        title: st.best_source === "single trial" ? "best single trial: no verdict stored yet" : null }),
      h("td", { class: "muted", text: st.best_source || "–" }),
      h("td", { text: tau(st.fidelity) }),
      h("td", { text: st.n_trials }),
      h("td", { text: st.has_family ? "yes" : "–" }),
      h("td", { class: "left muted", text: st.created_at ? st.created_at.replace("T", " ").slice(0, 19) : "–" })));
  const heads = ["study", "status", "baseline", "progress", "winner (α, β, γ)", "top-1 mean ± se (n)", "from", "Kendall τ", "trials", "family", "created"];
  const el = h("div", {},
    h("h1", { text: "Studies" }),
    data.studies.length
      ? h("div", { class: "card" }, h("table", { id: "studies-table" },
          h("thead", {}, h("tr", {}, heads.map((t, i) => h("th", { class: [0, 1, 2, 4, 10].includes(i) ? "left" : "", text: t })))),
          h("tbody", {}, rows)))
      : h("p", { class: "muted", text: "No studies yet: run `effscale search ... --storage URL` or POST /api/searches." }),
    h("h1", { text: "Comparisons" }),
    comparisonsTable(comps.comparisons, true));
  return { el, live: data.studies.some((st) => LIVE_STATUSES.has(st.status)) || comps.comparisons.some((c) => c.status === "running") };
}

function comparisonsTable(comps, withSearch) {
  if (!comps.length) return h("p", { class: "muted", id: "no-comparisons", text: "No comparisons yet: run `effscale compare --study NAME`." });
  const rows = comps.map((c) =>
    h("tr", { class: "comparison-row" },
      h("td", {}, h("a", { href: "#/comparison/" + enc(c.name), text: c.name })),
      withSearch ? h("td", { class: "left" }, c.search ? h("a", { href: "#/study/" + enc(c.search), text: c.search }) : "given coefficients") : null,
      h("td", { class: "left" }, badge(c.status)),
      h("td", { class: "left", text: c.baseline || "–" }),
      h("td", { class: "left", text: c.phi_values.join(", ") }),
      h("td", { text: c.repeats ?? "–" }),
      h("td", { class: "left verdicts", text: c.verdicts.length ? c.verdicts.map((v) => `φ=${v.phi}: ${v.verdict}`).join("; ") : "–" })));
  const heads = ["comparison", withSearch ? "search" : null, "status", "baseline", "φ", "seeds", "verdict"].filter((x) => x);
  return h("div", { class: "card" }, h("table", { id: "comparisons-table" },
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { class: t === "seeds" ? "" : "left", text: t })))),
    h("tbody", {}, rows)));
}

// ------------------------------------------------------------------------------------------
// one study

async function studyPage(name) {
  const base = "/api/studies/" + enc(name);
  const q = new URLSearchParams({ sort: ui.sort, limit: String(TABLE_LIMIT) });
  if (ui.state) q.set("state", ui.state);
  const [study, page, cands, ranking, curves, family] = await Promise.all([
    api(base),
    api(base + "/trials?" + q.toString()),
    api(base + "/candidates"),
    api(base + "/candidates/ranking"),
    api(base + "/curves?limit=" + CURVE_LIMIT),
    api(base + "/family").catch((e) => (e.status === 404 ? null : Promise.reject(e))),
  ]);
  const rows = ranking.candidates;
  const confirmations = study.confirmations || [];
  const confirmPages = await Promise.all(confirmations.map((c) => api(c.url + "/trials?" + new URLSearchParams({ limit: String(TABLE_LIMIT) }).toString())));
  const plots = h("div", { class: "grid2" },
    h("div", { class: "card" }, h("h2", { text: "Top-1 (mean ± se over repeats) against measured FLOPs" }), flopsPlot(rows, study.best)),
    study.fidelity ? h("div", { class: "card" }, h("h2", { id: "fidelity-title", text: `Proxy against confirmed top-1: Kendall τ ${tau(study.fidelity)}` }), fidelityPlot(rows, study.fidelity)) : null,
    h("div", { class: "card" }, h("h2", { text: "Candidates: α × β per γ, coloured by mean top-1" }), candidateMap(cands)),
    h("div", { class: "card" }, h("h2", { text: "Learning curves (validation top-1 per epoch)" + (curves.total > curves.curves.length ? `: the first ${curves.curves.length} of ${curves.total} trials` : "") }), curvesPlot(curves.curves)),
    h("div", { class: "card" }, h("h2", {}, "Family B0..B7 ", family ? h("a", { href: base + "/family/download", text: "download JSON" }) : null), familyTable(family, study, base)));
  const el = h("div", {}, studyHeader(study), plots,
    h("div", { class: "card", style: "margin-top:14px" }, candidateTable(ranking)),
    h("div", { class: "card" }, trialTable(page, rows)),
    ...confirmationTables(confirmations, confirmPages, rows));
  return { el, live: LIVE_STATUSES.has(study.status) };
}

function studyHeader(study) {
  const cfg = study.config || {};
  const budget = cfg.budget ? Object.entries(cfg.budget).map(([k, v]) => `${v} ${k}`).join(", ") : "–";
  const p = study.progress;
  const repeats = cfg.min_repeats ? `${cfg.min_repeats}–${cfg.max_repeats} seeds` : null;
  return h("div", { class: "card" },
    h("div", { class: "row" },
      h("h1", { text: study.name }), badge(study.status),
      h("span", { class: "kv" }, "baseline", h("b", { text: study.baseline || "–" })),
      h("span", { class: "kv" }, "data", h("b", { text: cfg.data || "–" })),
      h("span", { class: "kv" }, "constraint", h("b", { text: `${cfg.constraint || "?"} ratio ${cfg.target_ratio ?? "?"} ± ${cfg.tolerance ?? "?"}` })),
      h("span", { class: "kv" }, "budget", h("b", { text: budget + (repeats ? ` · ${repeats}` : "") }))),
    h("div", { class: "row", style: "margin-top:8px" },
      progressBar(p, false),
      h("span", { id: "progress-text", text: `${p.done} trials done · ${p.running} running · ${p.networks_done} of ${p.unique ?? "?"} networks trained, ${p.left ?? "?"} not started` }),
      h("span", { class: "muted", text: `grid ${p.grid ?? "?"} · feasible ${p.feasible ?? "?"} · aliases ${p.aliases ?? "?"}` })),
    verdictLine(study),
    study.fidelity ? fidelityLine(study.fidelity) : null,
    regimeLine(study.regime),
    warningsBox(study),
    study.comparisons && study.comparisons.length
      ? h("div", { id: "comparison-links", class: "row", style: "margin-top:8px" }, h("span", { class: "muted", text: "compared against single-dimension scaling:" }),
          study.comparisons.map((c) => h("a", { class: "comparison-link", href: "#/comparison/" + enc(c.name), text: `${c.name} (${c.status})` })))
      : null,
    study.error ? h("p", { class: "error", text: study.error }) : null);
}

// "winner (α, β, γ): mean ± se (n), tied with k: ...", from the stored verdict; a search without
// one shows its best single trial and says so.
function verdictLine(study) {
  const b = study.best;
  if (!b) return h("p", { id: "verdict-line", class: "verdict muted", text: "No trial has completed yet." });
  if (study.best_source !== "verdict") {
    return h("p", { id: "verdict-line", class: "verdict" }, h("b", { text: "best single trial so far " }),
      `${triple(b)}: top-1 ${meanSe(b.val_top1_mean, b.val_top1_stderr, b.repeats)}, trial ${b.number}`,
      h("span", { class: "muted", text: " (no verdict stored yet: a search still running, or made by an older effscale)" }));
  }
  const tied = b.tied_with || [];
  return h("p", { id: "verdict-line", class: "verdict" },
    h("b", { text: `winner ${triple(b)}: ` }), meanSe(b.val_top1_mean, b.val_top1_stderr, b.repeats),
    b.confirmed ? `, confirmed ${meanSe(b.confirmed.val_top1_mean, b.confirmed.val_top1_stderr, b.confirmed.repeats)}` : "",
    ` · measured ${fmt(b.flops_ratio, 2)}× / formula ${fmt(b.formula_ratio, 2)}× · chosen by the ${b.chosen_by}`,
    h("span", { id: "tied-with" }, tied.length
      ? `; tied with ${tied.length}: ` + tied.map((t) => `${triple(t)} ${meanSe(t.val_top1_mean, t.val_top1_stderr, t.repeats)}`).join("; ")
      : "; separated: tied with no other candidate"),
    h("span", { class: "muted rule", title: `${b.tie_break || ""}\n${b.separation_rule || ""}`, text: " (rules)" }));
}

function fidelityLine(f) {
  const by = f.confirm_epochs ? `${f.confirm_epochs} epochs` : `${f.confirm_steps} steps`;
  return h("p", { id: "fidelity-line", class: "muted" },
    `proxy fidelity: Kendall τ ${tau(f)} over ${f.candidates} candidates retrained for ${by}, ${f.repeats} seeds each; `,
    `proxy winner ${triple(f.proxy_winner)}, confirmed winner ${triple(f.confirmed_winner)}`,
    f.agrees ? " (they agree)" : " (they differ: the family comes from the confirmed winner)");
}

// B0's regime at the base resolution: does resolution still behave like resolution there?
function regimeLine(r) {
  if (!r) return null;
  return h("p", { id: "regime-line", class: r.degenerate ? "warn-text" : "muted" },
    h("b", { text: "regime: " }),
    `total stride ${r.total_stride} · last feature map ${r.last_map}×${r.last_map} at ${r.resolution} px · `,
    `one more pixel costs ${fmt(r.step_ratio, 2)}× FLOPs (r² law ${fmt(r.formula_step, 2)}×)`,
    r.degenerate ? " · degenerate: γ measures stride rounding (see the warnings)" : "");
}

function warningsBox(study) {
  const items = [...(study.warnings || []), ...(study.failures || [])];
  if (!items.length) return null;
  return h("div", { id: "warnings", class: "warnings" }, h("b", { text: "Warnings" }),
    h("ul", {}, items.map((w) => h("li", { class: "warning", text: w }))));
}

// ------------------------------------------------------------------------------------------
// candidate table: the aggregates behind the verdict

function candidateTable(ranking) {
  const rows = ranking.candidates.map((c, i) =>
    h("tr", { class: "cand-row " + (c.standing || "unranked"), "data-key": keyOf(c) },
      h("td", { text: i + 1 }),
      h("td", { text: fmt(c.alpha, 3) }), h("td", { text: fmt(c.beta, 3) }), h("td", { text: fmt(c.gamma, 3) }),
      h("td", { text: human(c.flops) }),
      h("td", { class: "left" }, c.standing ? h("span", { class: "standing " + c.standing, text: c.standing }) : h("span", { class: "muted", text: "racing" })),
      h("td", { text: meanSe(c.mean, c.stderr, c.n) }), h("td", { text: c.n }),
      h("td", { text: c.confirm_n ? meanSe(c.confirm_mean, c.confirm_stderr, c.confirm_n) : "–" }), h("td", { text: c.confirm_n })));
  const heads = ["#", "α", "β", "γ", "FLOPs", "standing", "race top-1 mean ± se (n)", "n", "confirmed mean ± se (n)", "confirm n"];
  return h("div", {},
    h("div", { class: "controls" }, h("h2", { style: "margin:0", text: "Candidates" }),
      h("span", { class: "muted", text: ranking.source === "verdict" ? "as the stored verdict ranked them" : "aggregated from the trials so far (no verdict yet)" })),
    h("div", { class: "scroll" }, h("table", { id: "candidate-table" },
      h("thead", {}, h("tr", {}, heads.map((t, i) => h("th", { class: i === 5 ? "left" : "", text: t })))),
      h("tbody", {}, rows))));
}

// ------------------------------------------------------------------------------------------
// trial table

const TRIAL_COLUMNS = ["#", "α", "β", "γ", "d", "w", "res", "repeat", "seed", "confirm", "measured ratio", "formula ratio", "params", "FLOPs",
  "top-1 (this run)", "candidate mean ± se (n)", "n", "time", "state"];

function trialRows(trials, ranking) {
  const agg = {};
  for (const c of ranking) agg[keyOf(c)] = c;
  return trials.map((t) => {
    const c = agg[keyOf(t)];
    const stats = c ? (t.confirmation ? [c.confirm_mean, c.confirm_stderr, c.confirm_n] : [c.mean, c.stderr, c.n]) : [null, null, 0];
    return h("tr", { class: "trial-row" + (t.confirmation ? " confirmation" : ""), "data-number": t.number },
      h("td", { text: t.number }),
      h("td", { text: fmt(t.alpha, 3) }), h("td", { text: fmt(t.beta, 3) }), h("td", { text: fmt(t.gamma, 3) }),
      h("td", { text: fmt(t.depth, 3) }), h("td", { text: fmt(t.width, 3) }), h("td", { text: t.resolution ?? "–" }),
      h("td", { text: t.repeat ?? "–" }), h("td", { text: t.seed ?? "–" }),
      h("td", { class: "confirm-flag", text: t.confirmation ? "✓" : "", title: t.confirmation ? "confirmation run (longer budget)" : null }),
      h("td", { text: t.flops_ratio === null ? "–" : fmt(t.flops_ratio, 3) + "×" }),
      h("td", { text: t.formula_ratio === null ? "–" : fmt(t.formula_ratio, 3) + "×" }),
      h("td", { text: human(t.params) }), h("td", { text: human(t.flops) }),
      h("td", { text: pct(t.val_top1) }), h("td", { text: meanSe(...stats) }), h("td", { text: stats[2] }),
      h("td", { text: secs(t.train_seconds ?? t.duration_s) }),
      h("td", { title: t.fail_reason || null }, badge(t.state)));
  });
}

function trialTable(page, ranking) {
  const stateSel = h("select", { id: "state-filter", onchange: (e) => { ui.state = e.target.value; render(); } },
    ["", "complete", "pruned", "fail", "running", "waiting"].map((v) => h("option", { value: v, selected: v === ui.state, text: v || "all states" })));
  const sortSel = h("select", { id: "sort", onchange: (e) => { ui.sort = e.target.value; render(); } },
    [["number", "trial #"], ["-value", "top-1 (best first)"], ["value", "top-1 (worst first)"], ["flops", "FLOPs"], ["-flops", "FLOPs (largest first)"]]
      .map(([v, t]) => h("option", { value: v, selected: v === ui.sort, text: t })));
  return h("div", {},
    h("div", { class: "controls" }, h("h2", { style: "margin:0", text: "Trials" }), stateSel, sortSel,
      h("span", { class: "muted", id: "trial-count", text: `${page.trials.length} of ${page.total} shown · one row per trial (repeat); the candidate's mean is over its stage's repeats` })),
    h("div", { class: "scroll trials" },
      h("table", { id: "trial-table" },
        h("thead", {}, h("tr", {}, TRIAL_COLUMNS.map((c) => h("th", { text: c })))),
        h("tbody", {}, trialRows(page.trials, ranking)))));
}

// The confirmation rounds' trials: each round is a study of its own (one budget, one objective),
// listed under the search's race trials.
function confirmationTables(confirmations, pages, ranking) {
  return confirmations.map((c, i) => h("div", { class: "card" },
    h("div", { class: "controls" }, h("h2", { style: "margin:0", text: "Confirmation trials" }),
      h("span", { class: "muted", text: `study ${c.name}: the top candidates retrained for ${Object.entries(c.budget).map(([k, v]) => `${v} ${k}`).join(", ")}, in a study of their own so that the search's study holds one objective · ${pages[i].trials.length} of ${pages[i].total} shown` })),
    h("div", { class: "scroll trials" },
      h("table", { class: "confirmation-table", "data-study": c.name },
        h("thead", {}, h("tr", {}, TRIAL_COLUMNS.map((t) => h("th", { text: t })))),
        h("tbody", {}, trialRows(pages[i].trials, ranking))))));
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
        (c.feasible ? (c.alias ? "alias: same network as another candidate\n" : "") +
          `race top-1 ${meanSe(top, c.val_top1_stderr, c.repeats)}` + (c.trial_numbers && c.trial_numbers.length ? ` (trials ${c.trial_numbers.join(", ")})` : "") : "outside the FLOPs band");
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
    h("span", {}, "mean top-1 ", pct(lo), " ", h("span", { class: "colorbar", style: `background:linear-gradient(90deg,${[0, 0.25, 0.5, 0.75, 1].map(colour).join(",")})` }), " ", pct(hi)));
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
// error bars and legends shared by the plots

// A vertical (or, with horizontal, a horizontal) ±se bar with caps, around (x, y) in data units.
function errorBar(xs, ys, x, y, se, cls, horizontal) {
  if (se === null || se === undefined) return null;
  const cap = 4;
  let d;
  if (horizontal) {
    const x1 = xs.map(x - se), x2 = xs.map(x + se), py = ys.map(y);
    d = `M${x1},${py}H${x2}M${x1},${py - cap}V${py + cap}M${x2},${py - cap}V${py + cap}`;
  } else {
    const y1 = ys.map(y - se), y2 = ys.map(y + se), px = xs.map(x);
    d = `M${px},${y1}V${y2}M${px - cap},${y1}H${px + cap}M${px - cap},${y2}H${px + cap}`;
  }
  return s("path", { class: cls, d });
}

function legendItem(colour, text, cls) {
  return h("span", { class: cls || null }, h("span", { class: "swatch", style: `background:${colour}` }), text);
}

// Data ranges that include the error bars.
function spanOf(points, value, err) {
  const lo = points.map((p) => value(p) - (err(p) || 0)), hi = points.map((p) => value(p) + (err(p) || 0));
  return [Math.min(...lo), Math.max(...hi)];
}

// ------------------------------------------------------------------------------------------
// top-1 against measured FLOPs: one point per candidate at its race mean, ±se bars

function flopsPlot(rows, best) {
  const pts = rows.filter((c) => c.mean !== null && c.flops !== null);
  const W = 560, H = 300, box = { l: 62, r: W - 12, t: 12, b: H - 40 };
  const svg = s("svg", { id: "flops-plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, "data-count": pts.length });
  if (!pts.length) {
    svg.appendChild(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "no candidate has completed a trial yet" }));
    return svg;
  }
  const xs = linear(Math.min(...pts.map((c) => c.flops)), Math.max(...pts.map((c) => c.flops)), box.l, box.r);
  const ys = linear(...spanOf(pts, (c) => c.mean, (c) => c.stderr), box.b, box.t);
  axes(svg, box, xs, ys, "measured FLOPs (fvcore)", "validation top-1 (race mean ± se)", human, pct);
  const isBest = (c) => best && keyOf(c) === keyOf(best);
  for (const c of pts) {
    const standing = c.standing || (isBest(c) ? "winner" : "unranked");
    const col = STANDING_COLOURS[standing] || "#5a6478";
    const g = s("g", { class: "cand-pt " + standing, "data-key": keyOf(c) },
      title(`${triple(c)} ${standing}: race ${meanSe(c.mean, c.stderr, c.n)}` + (c.confirm_n ? `, confirmed ${meanSe(c.confirm_mean, c.confirm_stderr, c.confirm_n)}` : "") + `\n${human(c.flops)} FLOPs`));
    append(g, [errorBar(xs, ys, c.flops, c.mean, c.stderr, "errbar")]);
    const cx = xs.map(c.flops), cy = ys.map(c.mean);
    if (standing === "winner") g.appendChild(s("circle", { class: "best-ring", cx, cy, r: 10 }));
    g.appendChild(s("circle", { class: "pt " + standing, cx, cy, r: standing === "winner" ? 6.5 : 5, fill: col }));
    svg.appendChild(g);
  }
  const legend = h("div", { class: "legend", id: "flops-legend" },
    legendItem(STANDING_COLOURS.winner, "winner", "lg-winner"), legendItem(STANDING_COLOURS.tied, "tied with the winner", "lg-tied"),
    legendItem(STANDING_COLOURS.separated, "separated (clearly worse)"), legendItem("#5a6478", "no verdict yet"),
    h("span", { class: "muted", text: "bars: ± one standard error over the repeats (n ≥ 2)" }));
  return h("div", {}, svg, legend);
}

// ------------------------------------------------------------------------------------------
// proxy against confirmed: does the short proxy rank like longer training?

function fidelityPlot(rows, fidelity) {
  const pts = rows.filter((c) => c.confirm_n > 0 && c.confirm_mean !== null && c.mean !== null);
  const W = 560, H = 300, box = { l: 62, r: W - 12, t: 12, b: H - 40 };
  const svg = s("svg", { id: "fidelity-plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, "data-count": pts.length });
  if (!pts.length) {
    svg.appendChild(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "no confirmed candidate" }));
    return svg;
  }
  const xs = linear(...spanOf(pts, (c) => c.mean, (c) => c.stderr), box.l, box.r);
  const ys = linear(...spanOf(pts, (c) => c.confirm_mean, (c) => c.confirm_stderr), box.b, box.t);
  const by = fidelity.confirm_epochs ? `${fidelity.confirm_epochs} epochs` : `${fidelity.confirm_steps} steps`;
  axes(svg, box, xs, ys, "proxy top-1 (race mean ± se)", `confirmed top-1 (${by})`, pct, pct);
  const winner = fidelity.confirmed_winner ? keyOf(fidelity.confirmed_winner) : null;
  for (const c of pts) {
    const col = STANDING_COLOURS[c.standing] || "#5a6478";
    const g = s("g", { class: "fid-pt", "data-key": keyOf(c) },
      title(`${triple(c)}: proxy ${meanSe(c.mean, c.stderr, c.n)}, confirmed ${meanSe(c.confirm_mean, c.confirm_stderr, c.confirm_n)}`));
    append(g, [errorBar(xs, ys, c.mean, c.confirm_mean, c.stderr, "xerr", true)]);
    append(g, [errorBar(xs, ys, c.mean, c.confirm_mean, c.confirm_stderr, "yerr")]);
    const cx = xs.map(c.mean), cy = ys.map(c.confirm_mean);
    if (keyOf(c) === winner) g.appendChild(s("circle", { class: "best-ring", cx, cy, r: 10 }));
    g.appendChild(s("circle", { class: "fpt", cx, cy, r: 5.5, fill: col }));
    svg.appendChild(g);
  }
  const legend = h("div", { class: "legend" },
    legendItem(STANDING_COLOURS.winner, "confirmed winner"), legendItem(STANDING_COLOURS.tied, "tied"),
    h("span", { class: "muted", text: `one point per confirmed candidate; ${fidelity.repeats} paired seeds` }),
    fidelity.warning ? h("span", { class: "warn-text", text: "τ below 0.5: the proxy's ranking is not to be trusted" }) : null);
  return h("div", {}, svg, legend);
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

// The formats of `effscale export`; the server's export route wants the launch token, asked for once
// per tab and kept in sessionStorage (never in the URL, where logs and history would keep it).
const EXPORT_FORMATS = ["python", "onnx", "pt2", "state-dict"];
const TOKEN_KEY = "effscale-token";

async function downloadExport(url, status) {
  let token = sessionStorage.getItem(TOKEN_KEY) || window.prompt("The server's EFFSCALE_TOKEN (exports need it):");
  if (!token) return;
  status.textContent = "exporting… (the member is built, traced and checked)";
  const res = await fetch(url, { headers: { Authorization: "Bearer " + token } });
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
    if (res.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    status.textContent = `${res.status}: ${detail}`;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || "export.zip";
  const link = h("a", { href: URL.createObjectURL(await res.blob()), download: name });
  document.body.appendChild(link);
  link.click();
  link.remove();
  status.textContent = "downloaded " + name;
}

function exportLinks(base, member, status) {
  return EXPORT_FORMATS.map((f) => h("a", {
    href: "#", class: "export-link", "data-format": f, text: f,
    onclick: (e) => { e.preventDefault(); downloadExport(`${base}/family/${enc(member)}/export/${f}`, status); },
  }));
}

function familyTable(family, study, base) {
  if (!family) {
    return h("p", { class: "muted", id: "family-missing", text: LIVE_STATUSES.has(study.status) ? "The family is emitted when the search completes." : "No family was saved for this study." });
  }
  const c = family.coefficients || {};
  const exportStatus = h("p", { class: "muted", id: "export-status" });
  const rows = family.members.map((m) =>
    h("tr", { class: "family-row" },
      h("td", { text: m.name }), h("td", { text: m.phi }), h("td", { text: fmt(m.depth, 3) }), h("td", { text: fmt(m.width, 3) }),
      h("td", { text: m.resolution }), h("td", { text: m.last_map ? `${m.last_map}×${m.last_map}` : "–" }),
      h("td", { text: human(m.params) }), h("td", { text: human(m.flops) }),
      h("td", { text: fmt(m.flops_ratio, 2) + "×" }), h("td", { text: fmt(m.formula_ratio, 2) + "×" }),
      h("td", { class: "exports" }, base ? exportLinks(base, m.name, exportStatus) : "–")));
  return h("div", {},
    h("p", { class: "muted", text: `${family.baseline}: α=${c.alpha} β=${c.beta} γ=${c.gamma}, base resolution ${family.base_resolution}; FLOPs ${family.flops_convention || ""}` }),
    h("div", { style: "overflow-x:auto" }, h("table", { id: "family-table" },
      h("thead", {}, h("tr", {}, ["member", "φ", "depth d", "width w", "res", "last map", "params", "FLOPs", "measured /B0", "formula /B0", "export (token)"].map((t) => h("th", { text: t })))),
      h("tbody", {}, rows))), exportStatus);
}

// ------------------------------------------------------------------------------------------
// one comparison: compound against single-dimension and fast scaling (the paper's Figure 8)

const ARM_COLOURS = { compound: "#d64545", depth: "#2a62c9", width: "#2f9e63", resolution: "#805ad5", fast: "#dd6b20", paper: "#b7791f", published: "#4a5568" };
// What each panel plots top-1 against: the paper's FLOPs (Figure 8), and Dollár et al.'s activations.
const FLOPS_AXIS = { id: "comparison-plot", key: "flops", ratio: "ratio", label: "measured FLOPs (fvcore)", unit: "FLOPs" };
const ACTIVATIONS_AXIS = { id: "comparison-activations-plot", key: "activations", ratio: "activations_vs_compound", label: "activations (fvcore)", unit: "activations" };

async function comparisonPage(name) {
  const c = await api("/api/comparisons/" + enc(name));
  const co = c.coefficients || {};
  const budget = c.budget ? Object.entries(c.budget).map(([k, v]) => `${v} ${k}`).join(", ") : "–";
  const header = h("div", { class: "card" },
    h("div", { class: "row" },
      h("h1", { text: c.name }), badge(c.status),
      h("span", { class: "kv" }, "search", c.search ? h("a", { id: "comparison-search", href: "#/study/" + enc(c.search), text: c.search }) : h("b", { text: "given coefficients" })),
      h("span", { class: "kv" }, "baseline", h("b", { text: c.baseline || "–" })),
      h("span", { class: "kv" }, "data", h("b", { text: c.data || "–" })),
      h("span", { class: "kv" }, "compound", h("b", { text: `α=${co.alpha} β=${co.beta} γ=${co.gamma}` })),
      h("span", { class: "kv" }, "seeds", h("b", { text: c.repeats ?? "–" })),
      h("span", { class: "kv" }, "budget", h("b", { text: budget }))),
    h("ul", { id: "verdict-list", class: "verdicts" },
      c.phis.length ? c.phis.map((e) => h("li", { class: "phi-verdict" }, h("b", { text: `φ=${e.phi}: ` }), e.verdict))
        : h("li", { class: "muted", text: `no result yet (${c.status}, ${c.n_trials} trials): re-run the same \`effscale compare\` to finish it` })),
    h("p", { class: "muted", id: "comparison-cost", text: `arms matched to compound in ${c.cost_label || "FLOPs"}` + (c.latency ? `; latency: ${c.latency.convention} on ${c.latency.device_description}, ${c.latency.threads} threads` : "") }),
    h("p", { class: "muted", text: `Δ: ${c.interval || "–"}. FLOPs: ${c.flops_convention || "–"}. Activations: ${c.activations_convention || "–"}` }));
  const el = h("div", {}, header,
    h("div", { class: "card" }, h("h2", { text: "Top-1 (mean ± se) against measured FLOPs, one series per arm across φ (the paper's Figure 8)" }), comparisonPlot(c.phis, FLOPS_AXIS)),
    h("div", { class: "card" }, h("h2", { text: "Top-1 (mean ± se) against activations, one series per arm across φ (Dollár et al.'s cost)" }), comparisonPlot(c.phis, ACTIVATIONS_AXIS)),
    h("div", { class: "card" }, h("h2", { text: "Arms" }), armsTable(c.phis)));
  return { el, live: c.status === "running" };
}

// Top-1 against one measured cost (axis: FLOPS_AXIS or ACTIVATIONS_AXIS), one series per arm across φ.
function comparisonPlot(phis, axis) {
  const x = (a) => a[axis.key];
  const rows = phis.flatMap((e) => e.arms.map((a) => ({ ...a, phi: e.phi }))).filter((a) => a.val_top1_mean !== null && x(a) != null);
  // compound last: drawn on top of an arm that builds the same network
  const arms = [...new Set(phis.flatMap((e) => e.arms.map((a) => a.arm)))].sort((a, b) => (a === "compound") - (b === "compound"));
  const W = 560, H = 320, box = { l: 62, r: W - 12, t: 12, b: H - 40 };
  const svg = s("svg", { id: axis.id, viewBox: `0 0 ${W} ${H}`, width: W, height: H, "data-count": arms.length });
  if (!rows.length) {
    const stored = phis.some((e) => e.arms.some((a) => a.val_top1_mean !== null));  // trained, but stored before this cost was kept
    svg.appendChild(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: stored ? `no ${axis.unit} stored for this comparison` : "no arm has finished yet" }));
    return svg;
  }
  const xs = linear(Math.min(...rows.map(x)), Math.max(...rows.map(x)), box.l, box.r);
  const ys = linear(...spanOf(rows, (a) => a.val_top1_mean, (a) => a.val_top1_stderr), box.b, box.t);
  axes(svg, box, xs, ys, axis.label, "validation top-1 (mean ± se)", human, pct);
  arms.forEach((arm, k) => {
    const col = ARM_COLOURS[arm] || LINE_COLOURS[k % LINE_COLOURS.length];
    const pts = rows.filter((a) => a.arm === arm).sort((a, b) => a.phi - b.phi);
    const g = s("g", { class: "series", "data-arm": arm });
    const d = pts.map((a, i) => `${i ? "L" : "M"}${xs.map(x(a)).toFixed(1)},${ys.map(a.val_top1_mean).toFixed(1)}`).join("");
    if (pts.length > 1) g.appendChild(s("path", { class: "series-line", d, stroke: col, "stroke-dasharray": arm === "compound" ? null : "5 3" }));
    for (const a of pts) {
      append(g, [errorBar(xs, ys, x(a), a.val_top1_mean, a.val_top1_stderr, "errbar")]);
      const shape = arm === "compound"
        ? s("rect", { class: "arm-pt compound", x: xs.map(x(a)) - 7, y: ys.map(a.val_top1_mean) - 7, width: 14, height: 14, style: `stroke:${col}` })
        : s("circle", { class: "arm-pt", cx: xs.map(x(a)), cy: ys.map(a.val_top1_mean), r: 5, fill: col });
      shape.appendChild(title(`${arm} at φ=${a.phi}: ${meanSe(a.val_top1_mean, a.val_top1_stderr, a.repeats)}, ${human(x(a))} ${axis.unit} (${fmt(a[axis.ratio], 3)}× compound)`));
      g.appendChild(shape);
    }
    svg.appendChild(g);
  });
  const legend = h("div", { class: "legend", id: axis.id.replace("-plot", "-legend") },
    arms.map((arm, k) => legendItem(ARM_COLOURS[arm] || LINE_COLOURS[k % LINE_COLOURS.length], armLabel(arm))),
    h("span", { class: "muted", text: "bars: ± one standard error over the paired seeds" }));
  return h("div", {}, svg, legend);
}

function armLabel(arm) {
  if (arm === "compound") return "compound (α, β, γ): open square";
  if (arm === "fast") return "fast scaling (d=s^0.1, w=s^0.4, r=s^0.05)";
  return ["paper", "published"].includes(arm) ? arm : `${arm} only`;
}

function armsTable(phis) {
  const rows = phis.flatMap((e) => e.arms.map((a) =>
    h("tr", { class: "arm-row" + (a.arm === "compound" ? " best" : "") },
      h("td", { text: e.phi }), h("td", { class: "left", text: a.scale == null ? a.arm : `${a.arm} (s=${fmt(a.scale, 3)})` }), h("td", { text: fmt(a.depth, 3) }), h("td", { text: fmt(a.width, 3) }),
      h("td", { text: a.resolution ?? "–" }), h("td", { text: human(a.flops) }), h("td", { text: fmt(a.ratio, 3) + "×" }),
      h("td", { class: "activations", text: a.activations == null ? "–" : human(a.activations) }),
      h("td", { text: a.activations_vs_compound == null ? "–" : fmt(a.activations_vs_compound, 3) + "×" }),
      h("td", { text: meanSe(a.val_top1_mean, a.val_top1_stderr, a.repeats) }),
      h("td", { text: a.delta_mean === null ? "–" : `${a.delta_mean >= 0 ? "+" : ""}${(100 * a.delta_mean).toFixed(1)} ± ${a.delta_half_width === null ? "n/a" : (100 * a.delta_half_width).toFixed(1)} pts` }))));
  return h("div", { style: "overflow-x:auto" }, h("table", { id: "comparison-table" },
    h("thead", {}, h("tr", {}, ["φ", "arm", "d", "w", "res", "FLOPs", "vs compound", "activations", "act. vs compound", "top-1 mean ± se (n)", "Δ vs compound (95%)"].map((t, i) => h("th", { class: i === 1 ? "left" : "", text: t })))),
    h("tbody", {}, rows)));
}
