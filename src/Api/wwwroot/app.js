// PageAlloc's page: each zone's pageblock map, free blocks per order, a timeline and lock
// statistics, read from the API every second; and the seed test's times per strategy.
// Plain ES modules and SVG/canvas: no framework, no build step. The experiment view is experiments.js.

import { initExperiments } from "./experiments.js";

const COLOURS = ["#c0392b", "#2e86c1", "#d4ac0d", "#8e44ad", "#7f8c8d"];
const MIGRATETYPES = ["Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"]; // as /proc/pagetypeinfo names them
document.getElementById("legend").append(...MIGRATETYPES.map((name, i) => {
  const span = Object.assign(document.createElement("span"), { textContent: name });
  span.style.setProperty("--colour", COLOURS[i]);
  return span;
}));
const HISTORY = 120;
const zones = new Map(); // name -> { element, history: [{free, large}] }
const keyInput = document.getElementById("api-key");
keyInput.value = sessionStorage.getItem("pagealloc-key") ?? "";
keyInput.addEventListener("change", () => sessionStorage.setItem("pagealloc-key", keyInput.value));

// The machine shown: ?machine=name in the address (so a view can be shared), default otherwise.
// Every machine's routes are under /machines/{name}; the page always uses that form.
const machineSelect = document.getElementById("machine");
let machine = new URLSearchParams(location.search).get("machine") ?? "default";
const machinePath = path => `/machines/${encodeURIComponent(machine)}${path}`;

function showMachine(name) {
  machine = name;
  const url = new URL(location.href);
  if (name === "default") url.searchParams.delete("machine"); else url.searchParams.set("machine", name);
  history.replaceState(null, "", url);
  for (const link of document.querySelectorAll("a[data-machine-path]")) link.href = machinePath(link.dataset.machinePath);
  zones.clear();
  document.getElementById("zones").replaceChildren();
  showNewestExperiment?.();
}

async function listMachines() {
  try {
    const list = await api("/machines");
    const names = list.machines.map(m => m.name);
    if (!names.includes(machine)) names.push(machine); // shown until the refresh says it is gone
    if (machineSelect.options.length !== names.length || names.some((n, i) => machineSelect.options[i].value !== n)) {
      machineSelect.replaceChildren(...names.map(n => new Option(n, n, false, n === machine)));
    }
  } catch (error) {
    status(error.message, true);
  }
}
machineSelect.addEventListener("change", () => { showMachine(machineSelect.value); refresh(); });

async function api(path, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  if (keyInput.value) headers["X-Api-Key"] = keyInput.value;
  const response = await fetch(path, { ...init, headers });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(`${path}: ${response.status} ${problem.detail ?? problem.title ?? ""}`);
  }
  return response.json();
}

function status(text, isError = false) {
  const element = document.getElementById("status");
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function svg(tag, attributes) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

function zoneElement(zone) {
  if (zones.has(zone.name)) return zones.get(zone.name);
  const element = document.getElementById("zone-template").content.firstElementChild.cloneNode(true);
  element.dataset.zone = zone.name;
  element.querySelector(".zone-title").textContent = `Zone ${zone.name} (node ${zone.node})`;
  element.querySelector("canvas").setAttribute("aria-label", `Pageblock map of zone ${zone.name}`);
  const head = element.querySelector(".buddyinfo thead tr");
  for (let order = 0; order <= 10; order++) head.append(Object.assign(document.createElement("th"), { scope: "col", textContent: order }));
  document.getElementById("zones").append(element);
  const entry = { element, history: [] };
  zones.set(zone.name, entry);
  return entry;
}

function drawPageblocks(canvas, map) {
  const cells = map.migratetype.length;
  const columns = Math.min(128, Math.max(32, Math.ceil(Math.sqrt(cells * 4))));
  const size = Math.max(2, Math.floor(640 / columns));
  canvas.width = columns * size;
  canvas.height = Math.ceil(cells / columns) * size;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < cells; i++) {
    const x = (i % columns) * size, y = Math.floor(i / columns) * size;
    const used = 1 - (map.freePages[i] + map.pcpPages[i]) / map.cellPages;
    context.globalAlpha = 0.25 + 0.75 * Math.max(0, Math.min(1, used));
    context.fillStyle = COLOURS[map.migratetype[i]] ?? "#000";
    context.fillRect(x, y, size - (size > 3 ? 1 : 0), size - (size > 3 ? 1 : 0));
    context.globalAlpha = 1;
    if (map.pcpPages[i] > 0 && size >= 4) {
      context.fillStyle = "#fff";
      context.fillRect(x + size / 2 - 1, y + size / 2 - 1, 2, 2);
    }
    if (map.hwPoisonPages[i] > 0) {
      context.strokeStyle = "#f00";
      context.strokeRect(x + 0.5, y + 0.5, size - 1, size - 1);
    }
  }
  canvas.setAttribute("aria-label", `Pageblock map: ${map.pageblocks} pageblocks in ${cells} cells`);
}

function drawOrders(element, stats) {
  element.replaceChildren();
  const types = Object.keys(stats.pagetypeinfo);
  const max = Math.max(1, ...stats.buddyinfo);
  const scale = value => value === 0 ? 0 : (Math.log10(value + 1) / Math.log10(max + 1)) * 120;
  for (let order = 0; order <= 10; order++) {
    let y = 130;
    types.forEach((type, index) => {
      const count = stats.pagetypeinfo[type][order];
      if (count === 0) return;
      const share = scale(stats.buddyinfo[order]) * count / stats.buddyinfo[order];
      y -= share;
      element.append(svg("rect", { x: 10 + order * 29, y, width: 24, height: share, fill: COLOURS[index] }));
    });
    element.append(Object.assign(svg("text", { x: 16 + order * 29, y: 145, "font-size": 10 }), { textContent: order }));
  }
}

function drawTimeline(element, history) {
  element.replaceChildren();
  // Scaled to what the last two minutes saw, so a change of a few thousand pages in a million shows.
  const values = history.flatMap(h => [h.free, h.large]);
  const low = Math.min(...values), high = Math.max(...values), span = Math.max(1, high - low);
  const line = (series, colour) => element.append(svg("polyline", {
    fill: "none", stroke: colour, "stroke-width": 1.5,
    points: series.map((v, i) => `${10 + i * (310 / (HISTORY - 1))},${95 - ((v - low) / span) * 80}`).join(" "),
  }));
  line(history.map(h => h.free), "#2e86c1");
  line(history.map(h => h.large), "#27ae60");
  element.append(Object.assign(svg("text", { x: 12, y: 12, "font-size": 9 }), { textContent: `${high} pages` }));
  element.append(Object.assign(svg("text", { x: 12, y: 106, "font-size": 9 }), { textContent: `${low} pages` }));
}

function fillTables(element, stats) {
  const row = element.querySelector(".buddyinfo tbody tr");
  row.replaceChildren(Object.assign(document.createElement("th"), { scope: "row", textContent: "blocks" }),
    ...stats.buddyinfo.map(count => Object.assign(document.createElement("td"), { textContent: count })));
  element.querySelector(".locks tbody").replaceChildren(...stats.locks.map(lock => {
    const tr = document.createElement("tr");
    tr.append(Object.assign(document.createElement("th"), { scope: "row", textContent: lock.name }),
      ...[lock.acquisitions, lock.contended, (lock.waitNs / 1e6).toFixed(2)].map(v => Object.assign(document.createElement("td"), { textContent: v })));
    return tr;
  }));
}

async function refresh() {
  try {
    const shown = machine; // a switch meanwhile drops what this refresh reads
    const list = await api(machinePath("/zones"));
    for (const zone of list) {
      if (shown !== machine) return;
      const entry = zoneElement(zone);
      const name = encodeURIComponent(zone.name);
      const stats = await api(machinePath(`/zones/${name}/stats`));
      if (shown !== machine) return;
      entry.history.push({ free: stats.freePages, large: (stats.buddyinfo[9] << 9) + (stats.buddyinfo[10] << 10) });
      if (entry.history.length > HISTORY) entry.history.shift();
      entry.element.querySelector(".zone-summary").textContent =
        `${stats.managedPages} pages: ${stats.freePages} free, ${stats.pcpPages} on pcp lists, ${stats.allocatedPages} allocated`;
      drawOrders(entry.element.querySelector(".buddy-bars"), stats);
      drawTimeline(entry.element.querySelector(".free-line"), entry.history);
      fillTables(entry.element, stats);
      drawPageblocks(entry.element.querySelector("canvas"), await api(machinePath(`/zones/${name}/pageblocks`)));
    }
    status(`Machine ${machine}: updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    status(error.message, true);
  }
}

document.getElementById("run-seed").addEventListener("click", async event => {
  const button = event.currentTarget;
  const result = document.getElementById("seed-result");
  button.disabled = true;
  result.textContent = "Running…";
  try {
    const run = await api(machinePath("/tests/page_alloc_high_order"), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ iterations: 10000 }),
    });
    const max = Math.max(...run.results.map(r => r.nsPerIteration));
    const chart = svg("svg", { viewBox: `0 0 420 ${run.results.length * 28 + 10}`, role: "img", "aria-hidden": "true" });
    run.results.forEach((r, i) => {
      const width = Math.max(1, (Math.log10(r.nsPerIteration) / Math.log10(max)) * 260);
      chart.append(Object.assign(svg("text", { x: 4, y: 22 + i * 28, "font-size": 12 }), { textContent: r.strategy }));
      chart.append(svg("rect", { x: 80, y: 8 + i * 28, width, height: 20, fill: COLOURS[i + 1] }));
      chart.append(Object.assign(svg("text", { x: 86 + width, y: 22 + i * 28, "font-size": 12 }), { textContent: `${r.nsPerIteration.toFixed(0)} ns` }));
    });
    const table = document.createElement("table");
    table.className = "seed-times";
    table.innerHTML = "<caption>Time per iteration: the median of the timed rounds, after a warm-up (log-scale bars above)</caption>"
      + "<thead><tr><th scope=\"col\">strategy</th><th scope=\"col\">ns/iteration</th><th scope=\"col\">spread (min–max)</th>"
      + "<th scope=\"col\">rounds</th></tr></thead>";
    const body = table.createTBody();
    for (const r of run.results) {
      const rounds = r.nsPerIterationByRound;
      const tr = body.insertRow();
      tr.append(Object.assign(document.createElement("th"), { scope: "row", textContent: r.strategy }),
        Object.assign(document.createElement("td"), { className: "median", textContent: r.nsPerIteration.toFixed(1) }),
        Object.assign(document.createElement("td"), { className: "spread", textContent: `${Math.min(...rounds).toFixed(1)}–${Math.max(...rounds).toFixed(1)}` }),
        Object.assign(document.createElement("td"), { className: "rounds", textContent: String(rounds.length) }));
    }
    result.replaceChildren(chart, table);
  } catch (error) {
    result.textContent = error.message;
  } finally {
    button.disabled = false;
  }
});

// Links to routes that take a key: a browser cannot add X-Api-Key to a link it follows, so with a
// key entered the page fetches the text itself and shows it (an event stream as it arrives, up to
// VIEWER_LIMIT characters, until the viewer is closed). Without a key the link is followed as usual.
const VIEWER_LIMIT = 1 << 20;
const viewer = document.getElementById("viewer");
let viewerAbort = null;
viewer.addEventListener("close", () => viewerAbort?.abort());
document.getElementById("viewer-close").addEventListener("click", () => viewer.close());
for (const link of document.querySelectorAll("a[data-needs-key]")) {
  link.addEventListener("click", event => {
    if (!keyInput.value) return;
    event.preventDefault();
    showText(link.getAttribute("href"));
  });
}

async function showText(path) {
  viewerAbort?.abort();
  viewerAbort = new AbortController();
  const text = document.getElementById("viewer-text");
  document.getElementById("viewer-title").textContent = path;
  text.textContent = "";
  viewer.showModal();
  try {
    const response = await fetch(path, { headers: { "X-Api-Key": keyInput.value }, signal: viewerAbort.signal });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      text.textContent = `${response.status} ${problem.detail ?? problem.title ?? ""}`;
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let shown = 0;
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      text.append(chunk.value);
      shown += chunk.value.length;
      if (shown > VIEWER_LIMIT) {
        text.append("\n… (stopped: the viewer shows at most 1 MiB)");
        viewerAbort.abort();
        return;
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") text.append(`\n${error.message}`);
  }
}

const showNewestExperiment = initExperiments({ api, svg, machinePath, getKey: () => keyInput.value });
showMachine(machine);
listMachines();
refresh();
setInterval(refresh, 1000);
setInterval(listMachines, 5000);
