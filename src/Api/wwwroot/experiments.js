// The experiment view: start an experiment on the machine shown (one workload, a fork per variant),
// follow its progress stream, and draw one chart per measure with the variants overlaid, beside the
// summary table. The newest experiment of the machine is shown when the page opens.

const VARIANT_COLOURS = ["#c0392b", "#27ae60", "#2e86c1", "#8e44ad", "#d4ac0d", "#16a085", "#e67e22", "#34495e"];
// Each variant's own dashes too: variants that behave the same draw the same line, and the dashes
// of the later one let the earlier one show through.
const VARIANT_DASHES = ["", "8 3", "2 3", "10 3 2 3", "4 4", "1 2", "12 4", "6 2 2 2"];

// The workloads the form offers, as POST .../experiments bodies' "workload" (and "fragment") members.
const TRACE = { kind: "trace", trace: "git-clone-tar", passes: 2, rangeEvery: 50 };
const WORKLOADS = {
  // The seed's second claim, ready-made: the machine's shape with Normal fragmented (a quarter free,
  // 90% of it below order 9), the real trace twice, a range user every 50 lines.
  "seed-claim": { workload: TRACE, fragment: { freePages: 262144, order: 9, unusableIndex: 0.9 } },
  "trace": { workload: TRACE },
  "mix": { workload: { kind: "mix", steps: 20000, rangeEvery: 50 } },
  "seed-loop": { workload: { kind: "seed-loop", steps: 2000 } },
  "vmalloc-loop": { workload: { kind: "vmalloc-loop", steps: 200, pages: 1024 } },
};

// Blocks of at least `order`, counted in blocks of that order (as the summary's free_blocks_orderN).
const blocksOfOrder = (free, order) => free.reduce((sum, n, o) => o >= order ? sum + n * 2 ** (o - order) : sum, 0);

function measures(order) {
  return [
    { name: `Free blocks of order ${order} and above (in order-${order} blocks)`, read: s => blocksOfOrder(s.freeBlocksByOrder, order) },
    { name: "Free pages (buddy)", read: s => s.freePages },
    { name: `unusable_index at order ${order}`, read: s => s.unusableIndex[order] },
    { name: `extfrag_index at order ${order} (-1: a block is free)`, read: s => s.extfragIndex[order] },
    { name: "pcp refills (rmqueue_bulk)", read: s => s.pcpRefills },
    { name: "pcp drains (free_pcppages_bulk)", read: s => s.pcpDrains },
    { name: "zone->lock acquisitions", read: s => s.zoneLockAcquisitions },
    { name: "Fallbacks (mm_page_alloc_extfrag)", read: s => s.fallbacks },
    { name: `High-order allocation failures (order > 3)`, read: s => s.highOrderFailures },
    { name: "Time per step (µs), per interval", read: (s, i, t) => i === 0 ? null : (s.elapsedNs - t[i - 1].elapsedNs) / Math.max(1, s.step - t[i - 1].step) / 1000 },
  ];
}

export function initExperiments({ api, svg, machinePath, getKey }) {
  const form = document.getElementById("experiment-form");
  const progress = document.getElementById("experiment-progress");
  const state = document.getElementById("experiment-state");
  const cancel = document.getElementById("experiment-cancel");
  const charts = document.getElementById("experiment-charts");
  const links = document.getElementById("experiment-links");
  let current = null; // { href, abort }

  async function follow(href) {
    current?.abort.abort();
    const abort = new AbortController();
    current = { href, abort };
    progress.hidden = false;
    cancel.hidden = false;
    try {
      const headers = getKey() ? { "X-Api-Key": getKey() } : {};
      const response = await fetch(`${href}/progress`, { headers, signal: abort.signal });
      if (!response.ok) throw new Error(`${href}/progress: ${response.status}`);
      // Server-Sent Events read by hand: EventSource cannot send the API key.
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        buffer += chunk.value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: (.*)$/m.exec(message)?.[1];
          const data = JSON.parse(message.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n"));
          if (type === "progress") {
            progress.value = data.fraction;
            state.textContent = `Running: ${data.doneSteps} of ${data.totalSteps} steps`;
          }
        }
      }
      await show(href);
    } catch (error) {
      if (error.name !== "AbortError") state.textContent = error.message;
    } finally {
      if (current?.abort === abort) {
        progress.hidden = true;
        cancel.hidden = true;
      }
    }
  }

  async function show(href) {
    const experiment = await api(href);
    links.replaceChildren();
    if (experiment.state !== "done") {
      state.textContent = `Experiment ${experiment.id}: ${experiment.state}${experiment.reason ? ` (${experiment.reason})` : ""}`;
      charts.replaceChildren();
      return;
    }
    const w = experiment.spec.workload;
    const order = w.kind === "seed-loop" ? w.order : w.rangeEvery > 0 ? w.rangeOrder : 9;
    const fragment = experiment.spec.fragment;
    state.textContent = `Experiment ${experiment.id}: done, ${experiment.variants.length} variants × ${experiment.spec.repeat} repeats `
      + `of ${w.kind}${w.trace ? ` ${w.trace}` : ""}${w.rangeEvery ? ` with a range user every ${w.rangeEvery} steps` : ""}`
      + `${fragment ? `, on the machine's shape with ${w.zone} fragmented (${fragment.freePages} pages free, unusable_index ${fragment.unusableIndex} at order ${fragment.order})` : ""}; repeat 0 drawn.`;
    charts.replaceChildren(legend(experiment.variants), ...measures(order).map(m => chart(m, experiment.variants)), summaryTable(experiment));
    links.append(Object.assign(document.createElement("a"), { href, textContent: "JSON" }), " ",
      Object.assign(document.createElement("a"), { href: `${href}/timeline.csv`, textContent: "CSV" }));
  }

  function legend(variants) {
    const p = Object.assign(document.createElement("p"), { className: "legend experiment-legend", textContent: "Variants (lines that coincide behave the same): " });
    variants.forEach((v, i) => {
      const span = Object.assign(document.createElement("span"), { textContent: v.variant });
      span.style.setProperty("--colour", VARIANT_COLOURS[i % VARIANT_COLOURS.length]);
      p.append(span);
    });
    return p;
  }

  function chart(measure, variants) {
    const figure = Object.assign(document.createElement("figure"), { className: "experiment-chart" });
    const element = svg("svg", { viewBox: "0 0 330 130", role: "img", "aria-label": measure.name });
    const series = variants.map(v => {
      const timeline = v.runs[0].timeline;
      return timeline.map((s, i) => [s.step, measure.read(s, i, timeline)]).filter(([, y]) => y !== null && Number.isFinite(y));
    });
    const points = series.flat();
    const maxStep = Math.max(1, ...points.map(([x]) => x));
    const low = Math.min(...points.map(([, y]) => y)), high = Math.max(...points.map(([, y]) => y));
    const span = high - low || 1;
    series.forEach((s, i) => element.append(svg("polyline", {
      fill: "none", stroke: VARIANT_COLOURS[i % VARIANT_COLOURS.length], "stroke-dasharray": VARIANT_DASHES[i % VARIANT_DASHES.length],
      "stroke-width": 1.5, "data-variant": variants[i].variant,
      points: s.map(([x, y]) => `${40 + (x / maxStep) * 280},${110 - ((y - low) / span) * 95}`).join(" "),
    })));
    const label = value => Number.isInteger(value) ? String(value) : value.toPrecision(3);
    element.append(Object.assign(svg("text", { x: 2, y: 16, "font-size": 9 }), { textContent: label(high) }));
    element.append(Object.assign(svg("text", { x: 2, y: 112, "font-size": 9 }), { textContent: label(low) }));
    element.append(Object.assign(svg("text", { x: 250, y: 126, "font-size": 9 }), { textContent: `step ${maxStep}` }));
    figure.append(element, Object.assign(document.createElement("figcaption"), { textContent: measure.name }));
    return figure;
  }

  function summaryTable(experiment) {
    const table = Object.assign(document.createElement("table"), { className: "experiment-summary" });
    const variants = experiment.variants.map(v => v.variant);
    table.innerHTML = `<caption>Summary over the repeats: median [min–max], and the median paired difference from ${variants[0]}</caption>`;
    const head = table.createTHead().insertRow();
    head.append(Object.assign(document.createElement("th"), { scope: "col", textContent: "measure" }),
      ...variants.map(v => Object.assign(document.createElement("th"), { scope: "col", textContent: v })));
    const body = table.createTBody();
    const rows = new Map();
    const fmt = x => Math.abs(x) >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toFixed(3);
    for (const s of experiment.summary) {
      if (!rows.has(s.measure)) {
        const tr = body.insertRow();
        tr.append(Object.assign(document.createElement("th"), { scope: "row", textContent: s.measure }));
        rows.set(s.measure, tr);
      }
      const text = `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]` + (s.variant === variants[0] ? "" : ` (${s.differenceMedian >= 0 ? "+" : ""}${fmt(s.differenceMedian)})`);
      rows.get(s.measure).append(Object.assign(document.createElement("td"), { textContent: text }));
    }
    return table;
  }

  form.addEventListener("submit", async event => {
    event.preventDefault();
    const data = new FormData(form);
    const variants = data.getAll("strategy").map(strategy => ({ name: strategy, strategy }));
    if (data.get("min-free-kbytes")) variants.push({ name: `min_free_kbytes=${data.get("min-free-kbytes")}`, minFreeKbytes: Number(data.get("min-free-kbytes")) });
    if (variants.length === 0) { state.textContent = "Choose at least one variant."; return; }
    try {
      const experiment = await api(machinePath("/experiments"), {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...WORKLOADS[data.get("workload")], variants, repeat: Number(data.get("repeat")), points: 100 }),
      });
      state.textContent = `Experiment ${experiment.id} started`;
      await follow(experiment.href);
    } catch (error) {
      state.textContent = error.message;
    }
  });

  cancel.addEventListener("click", async () => {
    if (!current) return;
    const { href, abort } = current;
    abort.abort();
    try {
      const headers = getKey() ? { "X-Api-Key": getKey() } : {};
      await fetch(href, { method: "DELETE", headers });
      state.textContent = "Cancelled and deleted.";
      charts.replaceChildren();
    } catch (error) {
      state.textContent = error.message;
    }
  });

  // The machine's newest experiment, followed if it runs: what a reload or a switch of machine shows.
  return async function showNewest() {
    current?.abort.abort();
    charts.replaceChildren();
    links.replaceChildren();
    state.textContent = "";
    try {
      const list = await api(machinePath("/experiments"));
      const newest = list.experiments[0];
      if (!newest) return;
      if (newest.state === "running") await follow(newest.href); else await show(newest.href);
    } catch (error) {
      state.textContent = error.message;
    }
  };
}
