// Zone editor: draw polygons on the camera's latest frame and save them to the config.
// Coordinates are frame pixels (the SVG's viewBox is the frame size), which is what the config stores.
// The page's form posts the zones as JSON with the CSRF token; the server validates the whole config
// before saving it (with a backup) and asks the daemon to reload.
"use strict";

(function () {
  const root = document.getElementById("zone-editor");
  if (!root) return;
  const canvas = document.getElementById("zone-canvas");
  const list = document.getElementById("zone-list");
  const status = document.getElementById("zone-status");
  const field = document.getElementById("zones-field");
  const form = document.getElementById("zone-form");
  const svgNS = "http://www.w3.org/2000/svg";
  const t = root.dataset;
  const width = Number(root.dataset.width);
  const height = Number(root.dataset.height);

  let zones = [];
  try {
    zones = JSON.parse(root.dataset.zones || "[]");
  } catch (e) {
    zones = [];
  }
  let selected = zones.length ? 0 : -1;
  let drawing = false;
  let draft = [];

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) { node.setAttribute(k, v); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(svgNS, tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) { node.setAttribute(k, v); });
    return node;
  }

  function pointsAttr(points) {
    return points.map(function (p) { return p.x + "," + p.y; }).join(" ");
  }

  function uniqueId() {
    let n = zones.length + 1;
    const taken = new Set(zones.map(function (z) { return z.id; }));
    while (taken.has("zone-" + n)) n += 1;
    return "zone-" + n;
  }

  function drawCanvas() {
    while (canvas.firstChild) canvas.firstChild.remove();
    zones.forEach(function (zone, index) {
      if (drawing && index === selected) return;
      if (zone.points.length < 3) return;
      const poly = svg("polygon", {
        points: pointsAttr(zone.points),
        class: "zone zone-" + zone.kind + (index === selected ? " selected" : ""),
        "data-zone": zone.id,
      });
      const title = svg("title");
      title.textContent = zone.name || zone.id;
      poly.append(title);
      canvas.append(poly);
    });
    if (drawing) {
      if (draft.length >= 2) {
        canvas.append(svg(draft.length >= 3 ? "polygon" : "polyline", { points: pointsAttr(draft), class: "drawing" }));
      }
      const r = Math.max(width, height) / 200;
      draft.forEach(function (p) {
        canvas.append(svg("circle", { cx: p.x, cy: p.y, r: r, class: "vertex" }));
      });
    }
  }

  function button(label, id, onClick) {
    const b = el("button", { type: "button", id: id }, label);
    b.addEventListener("click", function (event) { event.stopPropagation(); onClick(); });
    return b;
  }

  function drawList() {
    while (list.firstChild) list.firstChild.remove();
    zones.forEach(function (zone, index) {
      const item = el("div", { class: "zone-item" + (index === selected ? " selected" : ""), "data-index": index });
      item.addEventListener("click", function () {
        if (!drawing && selected !== index) { selected = index; render(); }
      });
      const idLabel = el("label", {}, t.tId + " ");
      const idInput = el("input", { class: "zone-id", value: zone.id, maxlength: "64", pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" });
      idInput.addEventListener("input", function () { zone.id = idInput.value.trim(); sync(); });
      idLabel.append(idInput);
      const nameLabel = el("label", {}, t.tName + " ");
      const nameInput = el("input", { class: "zone-name", value: zone.name || "", maxlength: "64" });
      nameInput.addEventListener("input", function () { zone.name = nameInput.value; sync(); });
      nameLabel.append(nameInput);
      const kindLabel = el("label", {}, t.tKind + " ");
      const kind = el("select", { class: "zone-kind" });
      [["fire_lane", t.tFireLane], ["ebike_entry", t.tEbikeEntry]].forEach(function ([value, label]) {
        const option = el("option", { value: value }, label);
        if (zone.kind === value) option.selected = true;
        kind.append(option);
      });
      kind.addEventListener("change", function () { zone.kind = kind.value; render(); });
      kindLabel.append(kind);
      const info = el("p", { class: "small" }, t.tPoints + ": " + zone.points.length);
      const buttons = el("div", { class: "buttons" });
      if (drawing && index === selected) {
        buttons.append(button(t.tFinish, "zone-finish", finish), button(t.tUndo, "zone-undo", undo));
      } else if (!drawing) {
        buttons.append(button(t.tRedraw, "zone-redraw-" + index, function () { selected = index; startDrawing(); }),
          button(t.tDelete, "zone-delete-" + index, function () { remove(index); }));
      }
      item.append(idLabel, nameLabel, kindLabel, info, buttons);
      list.append(item);
    });
  }

  function sync() {
    field.value = JSON.stringify(zones.map(function (z) {
      return { id: z.id, kind: z.kind, name: z.name || null, points: z.points };
    }));
  }

  function render() {
    drawCanvas();
    drawList();
    sync();
    canvas.classList.toggle("editing", drawing);
  }

  function startDrawing() {
    drawing = true;
    draft = [];
    status.textContent = "";
    render();
  }

  function finish() {
    if (draft.length < 3) { status.textContent = t.tNeed3; return; }
    zones[selected].points = draft;
    drawing = false;
    draft = [];
    status.textContent = "";
    render();
  }

  function undo() {
    draft.pop();
    render();
  }

  function remove(index) {
    zones.splice(index, 1);
    selected = zones.length ? Math.min(index, zones.length - 1) : -1;
    render();
  }

  canvas.addEventListener("click", function (event) {
    if (!drawing) return;
    const matrix = canvas.getScreenCTM();
    if (!matrix) return;
    const pt = canvas.createSVGPoint();
    pt.x = event.clientX;
    pt.y = event.clientY;
    const p = pt.matrixTransform(matrix.inverse());
    draft.push({
      x: Math.round(Math.min(Math.max(p.x, 0), width) * 10) / 10,
      y: Math.round(Math.min(Math.max(p.y, 0), height) * 10) / 10,
    });
    render();
  });

  document.addEventListener("keydown", function (event) {
    if (!drawing) return;
    if (event.key === "Enter") { event.preventDefault(); finish(); }
    if (event.key === "Backspace" && event.target === document.body) { event.preventDefault(); undo(); }
    if (event.key === "Escape") { drawing = false; draft = []; render(); }
  });

  document.getElementById("zone-new").addEventListener("click", function () {
    if (drawing) return;
    zones.push({ id: uniqueId(), kind: "fire_lane", name: "", points: [] });
    selected = zones.length - 1;
    startDrawing();
  });

  form.addEventListener("submit", function (event) {
    if (drawing) finish();
    const bad = zones.find(function (z) { return z.points.length < 3 || !z.id; });
    if (drawing || bad) {
      event.preventDefault();
      status.textContent = t.tNeed3;
      return;
    }
    sync();
  });

  render();
})();
