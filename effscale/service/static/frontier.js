// The frontier page: GET /api/frontiers, then one frontier as a scatter of mean top-1 (± se bars)
// against the measured cost ratio, the front drawn as a line through its points, the compound
// family's members overlaid as squares, and the table of points with their evidence.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const COLORS = { front: "#1b7f3b", near: "#c77c02", behind: "#9a9a9a" };

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") el.textContent = v; else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

function s(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") el.textContent = v; else el.setAttribute(k, v);
  }
  return el;
}

async function getJSON(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.json();
}

function pointName(p) { return p.label === "drawn" ? `#${p.index}` : p.label; }

function scatter(doc) {
  const pts = doc.points;
  const W = 640, H = 400, L = 60, R = 20, T = 20, B = 50;
  const svg = s("svg", { id: "frontier-plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, "data-count": pts.length });
  if (!pts.length) return svg;
  const lo = (p) => p.top1_mean - (p.top1_stderr || 0), hi = (p) => p.top1_mean + (p.top1_stderr || 0);
  const x0 = Math.min(...pts.map((p) => p.cost_ratio)), x1 = Math.max(...pts.map((p) => p.cost_ratio));
  const y0 = Math.min(...pts.map(lo)), y1 = Math.max(...pts.map(hi));
  const x = (v) => L + ((v - x0) / ((x1 - x0) || 1)) * (W - L - R);
  const y = (v) => H - B - ((v - y0) / ((y1 - y0) || 1)) * (H - T - B);
  svg.append(s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#444" }));
  svg.append(s("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#444" }));
  svg.append(s("text", { x: (L + W - R) / 2, y: H - 12, "text-anchor": "middle",
                         text: `measured ${doc.cost} ratio to the baseline (${x0.toFixed(2)}x to ${x1.toFixed(2)}x)` }));
  svg.append(s("text", { x: 14, y: (T + H - B) / 2, transform: `rotate(-90 14 ${(T + H - B) / 2})`, "text-anchor": "middle",
                         text: `val top-1, mean ± se over ${doc.repeats} paired seeds` }));
  const front = pts.filter((p) => p.standing === "front").sort((a, b) => a.cost_ratio - b.cost_ratio);
  svg.append(s("polyline", { id: "front-line", fill: "none", stroke: COLORS.front, "stroke-width": 1.5,
                             points: front.map((p) => `${x(p.cost_ratio)},${y(p.top1_mean)}`).join(" ") }));
  const members = new Set(((doc.family || {}).members || []).map((m) => m.same_network_as || m.name));
  for (const p of pts) {
    const cx = x(p.cost_ratio), cy = y(p.top1_mean), color = COLORS[p.standing] || "#333";
    if (p.top1_stderr != null) svg.append(s("line", { x1: cx, x2: cx, y1: y(lo(p)), y2: y(hi(p)), stroke: color }));
    const member = members.has(pointName(p)) && p.label !== "drawn";
    const mark = member ? s("rect", { x: cx - 5, y: cy - 5, width: 10, height: 10, fill: "#fff", stroke: color, "stroke-width": 2 })
                        : s("circle", { cx, cy, r: 4, fill: color });
    mark.setAttribute("class", `point ${p.standing}${member ? " member" : ""}`);
    mark.append(s("title", { text: `${pointName(p)}: ${p.cost_ratio.toFixed(2)}x, ${p.top1_mean.toFixed(4)} ± ${p.top1_stderr == null ? "n/a" : p.top1_stderr.toFixed(4)} (n=${p.n}), ${p.standing}` }));
    svg.append(mark);
    if (member || p.label === "baseline") svg.append(s("text", { x: cx + 7, y: cy - 7, "font-size": 11, text: pointName(p) }));
  }
  return svg;
}

function table(doc) {
  const head = ["point", "d", "w", "res", "cost", "top-1 mean ± se (n)", "standing", "dominated beyond noise by"];
  const rows = doc.points.map((p) => h("tr", {}, ...[pointName(p), p.depth.toFixed(3), p.width.toFixed(3), String(p.resolution),
    `${p.cost_ratio.toFixed(2)}x`, `${p.top1_mean.toFixed(4)} ± ${p.top1_stderr == null ? "n/a" : p.top1_stderr.toFixed(4)} (n=${p.n})`,
    p.standing, p.dominated_beyond_noise_by.join(", ") || "-"].map((c) => h("td", { text: c }))));
  return h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ...head.map((c) => h("th", { text: c })))), h("tbody", {}, ...rows));
}

async function showFrontier(view, name) {
  const detail = await getJSON(`/api/frontiers/${encodeURIComponent(name)}`);
  view.replaceChildren(h("h2", { text: `frontier ${name} (${detail.status})` }));
  if (!detail.result) {
    view.append(h("p", { class: "muted", text: `no front yet: ${detail.points_so_far.length} networks trained so far` }));
    return;
  }
  const doc = detail.result;
  view.append(h("p", { text: `${doc.baseline} on ${doc.data}; front: ${doc.front.join(", ")}` }), scatter(doc));
  if (doc.family) {
    view.append(h("p", { id: "family-standing", text: `family of ${doc.family.search}: ` +
      doc.family.members.map((m) => `${m.name} ${m.cost_ratio.toFixed(2)}x ${m.standing}`).join("; ") }));
  }
  view.append(h("p", { class: "muted", text: `near: dominated only within noise; behind: beyond it (${doc.rule})` }), table(doc));
}

async function main() {
  const view = document.getElementById("view");
  try {
    const name = new URLSearchParams(location.search).get("name");
    if (name) {
      await showFrontier(view, name);
    } else {
      const list = (await getJSON("/api/frontiers")).frontiers;
      view.replaceChildren(h("h2", { text: "Frontiers" }), list.length
        ? h("ul", {}, ...list.map((f) => h("li", {}, h("a", { href: `?name=${encodeURIComponent(f.name)}`, text: f.name }),
          ` ${f.baseline} on ${f.data}, ${f.status}, ${f.n_trials} trials`)))
        : h("p", { class: "muted", text: "no frontier in this storage: run `effscale frontier`" }));
    }
  } catch (err) {
    view.replaceChildren(h("p", { class: "error", text: String(err) }));
  }
  view.dataset.ready = "1";
}

main();
