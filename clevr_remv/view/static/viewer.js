// clevr-remv view: plain JavaScript, no build step, nothing fetched beyond this server.
"use strict";

const HEAT_STOPS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];  // viridis, 0 to 100 % IoU
const $ = (id) => document.getElementById(id);
const plural = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;  // clevr_remv.wording.plural

const state = {
  info: null, scene: null, u: 1, v: 1, expression: null, matches: [],
  instances: false, depth: false, predictionMode: "over", scores: null,
};
const images = new Map();  // URL -> Promise of {image} or {error}; one scene's layers
let drawToken = 0;

// ------------------------------------------------------------------ fetching

async function fetchJson(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

async function fetchImage(url) {
  try {
    const response = await fetch(url);
    if (!response.ok) {
      let message = `${url}: ${response.status} ${response.statusText}`;
      try { message = (await response.json()).error || message; } catch (ignored) { /* not JSON */ }
      return {error: message, status: response.status};
    }
    return {image: await createImageBitmap(await response.blob())};
  } catch (error) {
    return {error: `${url}: cannot be shown (${error.message})`};
  }
}

function load(url) {
  if (!images.has(url)) images.set(url, fetchImage(url));
  return images.get(url);
}

// ------------------------------------------------------------------ layers

const viewName = (u, v) => `u${u}_v${v}`;
const isValid = (u, v) => !state.expression || state.expression.views.some(([a, b]) => a === u && b === v);
// The 1-based objects an expression names: generalized datasets list them (none: no target).
const referentsOf = (expression) => expression.referents ?? [expression.referent];
const showPredictions = () => state.scene.predictions && state.expression && state.predictionMode !== "off";

function baseUrl(u, v) {
  const scene = state.scene;
  if (state.depth) return `/api/scenes/${scene.index}/views/${u}/${v}/depth.png`;
  return scene.views.find((view) => view.u === u && view.v === v).rgb;
}

function predictionUrl(u, v) {
  return `/api/scenes/${state.scene.index}/expressions/${state.expression.id}/views/${u}/${v}/prediction.png`;
}

// The layers of each canvas, bottom first: {main: [...], beside: [...]}, each {url, role}.
function layers(u, v) {
  const scene = state.scene;
  const main = [{url: baseUrl(u, v), role: "base"}];
  if (state.instances) main.push({url: `/api/scenes/${scene.index}/views/${u}/${v}/instances.png`, role: "instances"});
  const beside = [];
  if (showPredictions()) {
    const prediction = {url: predictionUrl(u, v), role: "prediction"};
    if (state.predictionMode === "over") main.push(prediction);
    else beside.push(main[0], prediction);
  }
  if (state.expression) {
    const objects = referentsOf(state.expression).map((k) => `object=${k}`).join("&");
    main.push({url: `/api/scenes/${scene.index}/views/${u}/${v}/outline.png?${objects}`, role: "outline"});
  }
  return {main, beside};
}

function drawPlaceholder(context, width, height) {
  context.fillStyle = "#444";
  context.fillRect(0, 0, width, height);
  context.strokeStyle = "#777";
  context.beginPath();
  context.moveTo(0, 0); context.lineTo(width, height);
  context.moveTo(width, 0); context.lineTo(0, height);
  context.stroke();
}

// Paint loaded layers on a canvas; return the messages of the layers that could not be shown.
function paint(canvas, stack, results, valid) {
  const {width, height} = state.scene;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const messages = [];
  stack.forEach((layer, i) => {
    const result = results[i];
    if (layer.role === "outline" && !valid) {  // grey the view out under the outline
      context.fillStyle = "rgba(30, 30, 30, 0.65)";
      context.fillRect(0, 0, width, height);
    }
    if (result.image) {
      context.drawImage(result.image, 0, 0);
    } else if (layer.role === "prediction" && result.status === 404) {
      messages.push("no prediction in this view (scored as an empty mask)");
    } else {
      if (layer.role === "base") drawPlaceholder(context, width, height);
      messages.push(result.error);
    }
  });
  return messages;
}

async function draw() {
  if (!state.scene) return;
  const token = ++drawToken;
  const {u, v} = state;
  const stacks = layers(u, v);
  const [main, beside] = await Promise.all([stacks.main, stacks.beside].map((s) => Promise.all(s.map((l) => load(l.url)))));
  if (token !== drawToken) return;  // the camera moved on meanwhile
  const valid = isValid(u, v);
  const messages = paint($("view"), stacks.main, main, valid);
  $("beside").hidden = stacks.beside.length === 0;
  if (stacks.beside.length) messages.push(...paint($("view-beside"), stacks.beside, beside, true));
  if (!valid) messages.unshift("the expression is not valid in this view (its referent is too hidden)");
  else if (state.expression && referentsOf(state.expression).length === 0) {
    messages.unshift("no target: no object fits this expression");
  }
  $("view").dataset.view = viewName(u, v);
  $("view-label").textContent = `view ${viewName(u, v)}` + (u === state.scene.center[0] && v === state.scene.center[1] ? " (centre)" : "");
  const message = $("message");
  message.textContent = [...new Set(messages)].join(" · ");
  message.className = messages.some((text) => /missing|not a readable|cannot/.test(text)) ? "error" : "";
  showIou();
  drawGridMap();
  preloadNeighbours();
}

function preloadNeighbours() {
  const grid = state.scene.grid;
  for (let dv = -1; dv <= 1; dv++) {
    for (let du = -1; du <= 1; du++) {
      const u = state.u + du, v = state.v + dv;
      if ((du || dv) && u >= 1 && v >= 1 && u <= grid && v <= grid) {
        const stacks = layers(u, v);
        [...stacks.main, ...stacks.beside].forEach((layer) => load(layer.url));
      }
    }
  }
}

// ------------------------------------------------------------------ camera grid and scores

function heatColor(percent) {
  const position = Math.max(0, Math.min(1, percent / 100)) * (HEAT_STOPS.length - 1);
  const i = Math.min(Math.floor(position), HEAT_STOPS.length - 2);
  const mix = (a, b, t) => Math.round(a + (b - a) * t);
  const [from, to] = [HEAT_STOPS[i], HEAT_STOPS[i + 1]].map((hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));
  return `rgb(${from.map((c, k) => mix(c, to[k], position - i)).join(",")})`;
}

function drawGridMap() {
  const scene = state.scene;
  const map = $("grid-map");
  map.style.gridTemplateColumns = `repeat(${scene.grid}, 30px)`;
  map.replaceChildren();
  for (let v = 1; v <= scene.grid; v++) {
    for (let u = 1; u <= scene.grid; u++) {
      const cell = document.createElement("div");
      cell.dataset.u = u;
      cell.dataset.v = v;
      cell.title = viewName(u, v);
      const score = state.scores && state.scores.get(viewName(u, v));
      if (score) {
        cell.style.background = heatColor(score.iou);
        cell.style.color = score.iou < 60 ? "#fff" : "#111";
        cell.textContent = score.iou.toFixed(0);
        cell.title += `: IoU ${score.iou.toFixed(2)} %`;
      }
      cell.classList.toggle("invalid", !isValid(u, v));
      cell.classList.toggle("center", u === scene.center[0] && v === scene.center[1]);
      cell.classList.toggle("current", u === state.u && v === state.v);
      cell.addEventListener("click", () => moveTo(u, v));
      map.append(cell);
    }
  }
}

function showIou() {
  const label = $("view-iou");
  if (!state.scores) { label.textContent = ""; return; }
  const score = state.scores.get(viewName(state.u, state.v));
  label.textContent = score
    ? `IoU ${score.iou.toFixed(2)} %` + (score.missing ? " (no prediction: empty mask)" : "")
    : "IoU: not scored in this view";
}

async function loadScores() {
  state.scores = null;
  $("grid-summary").textContent = "";
  if (!state.scene.predictions || !state.expression) return;
  const expression = state.expression;
  try {
    const scores = await fetchJson(`/api/scenes/${state.scene.index}/expressions/${expression.id}/scores`);
    if (expression !== state.expression) return;
    state.scores = new Map(scores.views.map((view) => [viewName(view.u, view.v), view]));
    $("grid-summary").textContent = `heat map: IoU per view · over ${plural(scores.views.length, "view")}: ` +
      `mIoU ${scores.mIoU.toFixed(2)} %, oIoU ${scores.oIoU.toFixed(2)} %`;
  } catch (error) {
    $("grid-summary").textContent = `IoU unavailable: ${error.message}`;
  }
}

function moveTo(u, v) {
  const grid = state.scene.grid;
  u = Math.max(1, Math.min(grid, u));
  v = Math.max(1, Math.min(grid, v));
  if (u === state.u && v === state.v) return;
  state.u = u;
  state.v = v;
  draw();
}

// ------------------------------------------------------------------ scene, expressions, legend

function describe(object) {
  return `${object.size} ${object.color} ${object.material} ${object.shape}`;
}

function showLegend() {
  const legend = $("legend");
  legend.replaceChildren();
  if (!state.instances) return;
  const list = document.createElement("ul");
  for (const object of state.scene.objects) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = object.overlay;
    item.append(swatch, `${object.id}: ${describe(object)}`);
    list.append(item);
  }
  legend.append(list);
}

function showExpressionDetail() {
  const detail = $("expression-detail");
  detail.replaceChildren();
  const expression = state.expression;
  if (!expression) return;
  const referents = referentsOf(expression);
  const named = referents.map((k) => `${k} (${describe(state.scene.objects[k - 1])})`).join(", ");
  const target = referents.length === 0 ? "no target" : `referent${referents.length > 1 ? "s" : ""} ${named}`;
  const family = document.createElement("div");
  family.textContent = `family ${expression.family.template} #${expression.family.index} · ${target} · ` +
    `valid in ${expression.views.length} of ${plural(state.scene.views.length, "view")}`;
  const program = document.createElement("ol");
  program.start = 0;
  for (const step of expression.program) {
    const item = document.createElement("li");
    const side = step.side_inputs && step.side_inputs.length ? ` [${step.side_inputs.join(", ")}]` : "";
    const inputs = step.inputs.length ? ` ← ${step.inputs.join(", ")}` : "";
    item.textContent = `${step.type}${side}${inputs}`;
    program.append(item);
  }
  detail.append(family, program);
}

function selectExpression(id) {
  state.expression = state.scene.expressions.find((expression) => expression.id === id) || null;
  for (const item of $("expressions").children) item.classList.toggle("selected", Number(item.dataset.id) === id);
  showExpressionDetail();
  draw();
  loadScores().then(draw);
}

function showExpressions() {
  const list = $("expressions");
  list.replaceChildren();
  for (const expression of state.scene.expressions) {
    const item = document.createElement("li");
    item.dataset.id = expression.id;
    item.textContent = `${expression.id}. ${expression.text}`;
    item.classList.toggle("match", state.matches.includes(expression.id));
    item.addEventListener("click", () => selectExpression(expression.id));
    list.append(item);
  }
}

async function selectScene(index, matches) {
  for (const item of $("scene-list").children) item.classList.toggle("selected", Number(item.dataset.index) === index);
  try {
    const scene = await fetchJson(`/api/scenes/${index}`);
    images.clear();
    Object.assign(state, {scene, u: scene.center[0], v: scene.center[1], expression: null, scores: null, matches});
  } catch (error) {
    $("message").textContent = error.message;
    $("message").className = "error";
    return;
  }
  state.depth = state.depth && state.scene.depth;
  $("toggle-depth").checked = state.depth;
  $("depth-control").hidden = !state.scene.depth;
  $("prediction-control").hidden = !state.scene.predictions;
  $("grid-summary").textContent = "";
  showExpressions();
  showExpressionDetail();
  showLegend();
  if (matches.length) selectExpression(matches[0]); else draw();
}

async function showScenes() {
  const query = $("filter").value;
  let scenes;
  try {
    scenes = await fetchJson(`/api/scenes?q=${encodeURIComponent(query)}`);
  } catch (error) {
    $("scene-count").textContent = error.message;
    return;
  }
  if (query !== $("filter").value) return;  // typed on meanwhile
  const list = $("scene-list");
  list.replaceChildren();
  for (const scene of scenes) {
    const item = document.createElement("li");
    item.dataset.index = scene.index;
    if (scene.error) {
      item.className = "broken";
      item.title = scene.error;
      item.textContent = `#${scene.index} · unreadable`;
    } else {
      item.textContent = `#${scene.index} · ${plural(scene.objects, "object")} · ${plural(scene.expressions, "expression")}`;
    }
    item.classList.toggle("selected", state.scene !== null && state.scene.index === scene.index);
    item.addEventListener("click", () => selectScene(scene.index, scene.matches));
    list.append(item);
  }
  $("scene-count").textContent = `${scenes.length} of ${plural(state.info.scenes, "scene")}`;
  return scenes;
}

// ------------------------------------------------------------------ input

function listen() {
  let timer;
  $("filter").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(showScenes, 200); });
  document.addEventListener("keydown", (event) => {
    const steps = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
    if (!state.scene || !(event.key in steps) || event.target.matches("input, select")) return;
    event.preventDefault();
    moveTo(state.u + steps[event.key][0], state.v + steps[event.key][1]);
  });
  const canvas = $("view");
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    if (!state.scene) return;
    drag = {x: event.clientX, y: event.clientY, u: state.u, v: state.v};
    canvas.setPointerCapture(event.pointerId);
    canvas.focus();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const step = canvas.getBoundingClientRect().width / (2 * state.scene.grid);  // half the width crosses the grid
    moveTo(drag.u + Math.round((event.clientX - drag.x) / step), drag.v + Math.round((event.clientY - drag.y) / step));
  });
  const stop = () => { drag = null; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  $("toggle-instances").addEventListener("change", (event) => { state.instances = event.target.checked; showLegend(); draw(); });
  $("toggle-depth").addEventListener("change", (event) => { state.depth = event.target.checked; draw(); });
  $("prediction-mode").addEventListener("change", (event) => { state.predictionMode = event.target.value; draw(); });
}

async function start() {
  listen();
  try {
    state.info = await fetchJson("/api/info");
  } catch (error) {
    $("message").textContent = error.message;
    return;
  }
  $("dataset").textContent = `${state.info.dataset} · ${plural(state.info.scenes, "scene")} · ${state.info.grid}x${state.info.grid} views` +
    (state.info.predictions ? " · with predictions" : "");
  const scenes = await showScenes();
  const first = scenes && scenes.find((scene) => !scene.error);
  if (first) selectScene(first.index, []);
}

start();
