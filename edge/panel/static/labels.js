// Labelling page: box collected frames with the site classes, keyboard first, and switch site models.
// Boxes are in frame pixels (the SVG's viewBox is the frame size), which is what the server stores.
// An unlabelled frame starts from the model's proposals, so most frames need a glance and "S".
// Keys: drag = new box; 1-9, 0 = class (of the selected box, and of the next one drawn); Tab = next box;
// Del/Backspace = delete box; A = accept proposals; C = clear; S/Enter = save and next; N/→, P/← = move;
// X = drop the frame. Writes send the session's CSRF token (body[data-csrf]) as X-CSRF-Token.
"use strict";

(function () {
  const root = document.getElementById("labeler");
  if (!root) return;
  const svgNS = "http://www.w3.org/2000/svg";
  const d = root.dataset;
  const admin = d.admin === "1";
  const classes = d.classes.split(",");
  const negatives = new Set(d.hardNegatives.split(","));
  const csrf = document.body.dataset.csrf || "";
  const canvas = document.getElementById("label-canvas");
  const image = document.getElementById("label-image");
  const boxList = document.getElementById("label-boxes");
  const status = document.getElementById("label-status");
  const meta = document.getElementById("label-meta");
  const position = document.getElementById("label-position");
  const cameraSelect = document.getElementById("label-camera");
  const stateSelect = document.getElementById("label-state");
  const colours = ["#ff4000", "#00c0ff", "#ffd400", "#40ff40", "#ff40ff", "#ffffff", "#a0a0ff", "#ffa040", "#40ffd0", "#c08040"];

  let frames = [];
  let index = 0;
  let frame = null;
  let boxes = [];
  let selected = -1;
  let current = classes[0];
  let drag = null;

  function className(c) {
    return d["class" + c.split("_").map(function (p) { return p[0].toUpperCase() + p.slice(1); }).join("")] || c;
  }
  function reasonName(r) {
    return d["tReason" + r.split("_").map(function (p) { return p[0].toUpperCase() + p.slice(1); }).join("")] || r;
  }
  function say(node, text) { node.textContent = text; }

  async function api(method, url, body) {
    const options = { method: method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data: data };
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(svgNS, tag);
    Object.entries(attrs).forEach(function ([k, v]) { node.setAttribute(k, v); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function draw() {
    while (canvas.firstChild) canvas.removeChild(canvas.firstChild);
    boxList.textContent = "";
    boxes.forEach(function (b, i) {
      const colour = colours[classes.indexOf(b.label) % colours.length];
      canvas.appendChild(svg("rect", {
        x: b.x1, y: b.y1, width: b.x2 - b.x1, height: b.y2 - b.y1, fill: "none", stroke: colour,
        "stroke-width": i === selected ? 4 : 2, "stroke-dasharray": b.proposal ? "6 4" : "none",
        "vector-effect": "non-scaling-stroke", "data-index": i,
      }));
      canvas.appendChild(svg("text", { x: b.x1 + 2, y: Math.max(14, b.y1 - 3), fill: colour, "font-size": 14,
        "paint-order": "stroke", stroke: "#000", "stroke-width": 3 }, className(b.label)));
      const item = document.createElement("li");
      item.textContent = (i === selected ? "▶ " : "") + className(b.label) +
        (negatives.has(b.label) ? " ⊘" : "") + (b.proposal ? " · " + d.tProposal + " " + Math.round(b.score * 100) + "%" : "");
      item.addEventListener("click", function () { selected = i; draw(); });
      boxList.appendChild(item);
    });
    if (drag && drag.moved) {
      canvas.appendChild(svg("rect", { x: Math.min(drag.x0, drag.x), y: Math.min(drag.y0, drag.y),
        width: Math.abs(drag.x - drag.x0), height: Math.abs(drag.y - drag.y0), fill: "#ffd400", "fill-opacity": 0.15,
        stroke: "#ffd400", "stroke-dasharray": "6 4", "vector-effect": "non-scaling-stroke" }));
    }
    document.querySelectorAll("#label-classes button").forEach(function (b) {
      b.classList.toggle("current", b.dataset.class === current);
    });
  }

  function proposals() {
    return (frame.proposals || []).map(function (b) {
      return { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, label: b.label, score: b.score, proposal: true };
    });
  }

  async function load() {
    const params = new URLSearchParams({ state: stateSelect.value });
    if (cameraSelect.value) params.set("camera", cameraSelect.value);
    const result = await api("GET", "/api/labels/frames?" + params.toString());
    frames = result.ok ? result.data.frames : [];
    if (result.ok) {
      say(document.getElementById("label-quota"), (result.data.used_bytes / 1048576).toFixed(1) + " / " +
        (result.data.quota_bytes / 1048576).toFixed(0) + " MiB");
    }
    index = 0;
    show();
  }

  function show() {
    if (!frames.length) {
      frame = null; boxes = []; selected = -1;
      image.src = "data:,"; say(meta, d.tNone); say(position, "0 / 0"); draw();
      return;
    }
    index = Math.max(0, Math.min(index, frames.length - 1));
    frame = frames[index];
    canvas.setAttribute("viewBox", "0 0 " + frame.width + " " + frame.height);
    image.width = frame.width; image.height = frame.height;
    image.src = "/api/labels/image/" + encodeURIComponent(frame.camera_id) + "/" + encodeURIComponent(frame.frame_id);
    boxes = frame.boxes ? frame.boxes.map(function (b) { return Object.assign({}, b); }) : proposals();
    selected = boxes.length ? 0 : -1;
    say(position, (index + 1) + " / " + frames.length);
    say(meta, frame.camera_id + " · " + frame.ts.replace("T", " ").slice(0, 19) + " · " + reasonName(frame.reason) +
      " · " + (frame.split === "holdout" ? d.tHoldout : d.tTrain) + (frame.model ? " · " + frame.model : ""));
    say(status, "");
    draw();
  }

  async function save() {
    if (!frame || !admin) return;
    const body = { boxes: boxes.map(function (b) { return { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, label: b.label }; }) };
    const result = await api("PUT", "/api/labels/frames/" + encodeURIComponent(frame.camera_id) + "/" +
      encodeURIComponent(frame.frame_id), body);
    if (!result.ok) {
      say(status, d.tSaveFailed + ": " + (result.data && result.data.detail ? JSON.stringify(result.data.detail) : result.status));
      return;
    }
    frames[index] = result.data;
    say(status, d.tSaved);
    if (stateSelect.value === "unlabelled") { frames.splice(index, 1); show(); } else { index += 1; show(); }
  }

  async function dropFrame() {
    if (!frame || !admin) return;
    const result = await api("DELETE", "/api/labels/frames/" + encodeURIComponent(frame.camera_id) + "/" +
      encodeURIComponent(frame.frame_id));
    if (result.ok) { frames.splice(index, 1); show(); }
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return { x: (event.clientX - rect.left) / rect.width * frame.width, y: (event.clientY - rect.top) / rect.height * frame.height };
  }

  canvas.addEventListener("mousedown", function (event) {
    if (!frame) return;
    const p = point(event);
    drag = { x0: p.x, y0: p.y, x: p.x, y: p.y, moved: false };
    canvas.focus();
  });
  canvas.addEventListener("mousemove", function (event) {
    if (!drag) return;
    const p = point(event);
    drag.x = p.x; drag.y = p.y;
    drag.moved = Math.abs(drag.x - drag.x0) > 3 || Math.abs(drag.y - drag.y0) > 3;
    draw();
  });
  window.addEventListener("mouseup", function (event) {
    if (!drag) return;
    const done = drag;
    drag = null;
    if (done.moved) {
      boxes.push({ x1: Math.max(0, Math.min(done.x0, done.x)), y1: Math.max(0, Math.min(done.y0, done.y)),
        x2: Math.min(frame.width, Math.max(done.x0, done.x)), y2: Math.min(frame.height, Math.max(done.y0, done.y)),
        label: current });
      selected = boxes.length - 1;
    } else if (event.target && event.target.dataset && event.target.dataset.index !== undefined) {
      selected = Number(event.target.dataset.index);
    }
    draw();
  });

  document.querySelectorAll("#label-classes button").forEach(function (button) {
    button.addEventListener("click", function () { setClass(button.dataset.class); });
  });

  function setClass(c) {
    current = c;
    if (selected >= 0 && boxes[selected]) { boxes[selected].label = c; delete boxes[selected].proposal; }
    draw();
  }

  document.addEventListener("keydown", function (event) {
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (/^[0-9]$/.test(key)) {
      const n = key === "0" ? 9 : Number(key) - 1;
      if (classes[n]) setClass(classes[n]);
    } else if (key === "Tab") {
      if (boxes.length) { selected = (selected + (event.shiftKey ? boxes.length - 1 : 1)) % boxes.length; draw(); }
    } else if (key === "Delete" || key === "Backspace") {
      if (selected >= 0) { boxes.splice(selected, 1); selected = Math.min(selected, boxes.length - 1); draw(); }
    } else if (key === "a" || key === "A") {
      if (frame) { boxes = proposals(); selected = boxes.length ? 0 : -1; draw(); }
    } else if (key === "c" || key === "C") {
      boxes = []; selected = -1; draw();
    } else if (key === "s" || key === "S" || key === "Enter") {
      save();
    } else if (key === "n" || key === "N" || key === "ArrowRight") {
      index += 1; show();
    } else if (key === "p" || key === "P" || key === "ArrowLeft") {
      index -= 1; show();
    } else if (key === "x" || key === "X") {
      dropFrame();
    } else {
      return;
    }
    event.preventDefault();
  });

  function click(id, fn) { const node = document.getElementById(id); if (node) node.addEventListener("click", fn); }
  click("label-save", save);
  click("label-accept", function () { if (frame) { boxes = proposals(); draw(); } });
  click("label-delete", function () { if (selected >= 0) { boxes.splice(selected, 1); selected = -1; draw(); } });
  click("label-clear", function () { boxes = []; selected = -1; draw(); });
  click("label-drop", dropFrame);
  click("label-next", function () { index += 1; show(); });
  click("label-prev", function () { index -= 1; show(); });
  cameraSelect.addEventListener("change", load);
  stateSelect.addEventListener("change", load);

  // ---- site models: both scores per camera, validate-and-activate, one-click rollback
  const modelTable = document.querySelector("#model-table tbody");
  const modelStatus = document.getElementById("model-status");

  function score(s) { return s === null || s === undefined ? "–" : s.toFixed(3); }

  async function loadModels() {
    const result = await api("GET", "/api/labels/models");
    modelTable.textContent = "";
    if (!result.ok) return;
    const models = result.data.models;
    if (!models.length) say(modelStatus, d.tNoModels);
    result.data.cameras.forEach(function (cam) {
      const row = document.createElement("tr");
      const last = cam.comparisons[0];
      [cam.name + " (" + cam.id + ")", cam.card, String(cam.holdout_frames),
        last ? score(last.current.score) + " / " + score(last.candidate.score) + " · " + last.candidate.model : "–"]
        .forEach(function (text, i) {
          const cell = document.createElement("td");
          cell.textContent = text;
          if (i === 2) cell.className = "num";
          row.appendChild(cell);
        });
      const actions = document.createElement("td");
      if (admin && models.length) {
        const pick = document.createElement("select");
        models.forEach(function (m) { const o = document.createElement("option"); o.value = m.name; o.textContent = m.name; pick.appendChild(o); });
        const go = document.createElement("button");
        go.type = "button"; go.textContent = d.tActivate;
        go.addEventListener("click", async function () {
          go.disabled = true;
          const r = await api("POST", "/api/labels/models/" + encodeURIComponent(cam.id) + "/activate", { card: pick.value });
          go.disabled = false;
          const c = r.data && r.data.comparison;
          say(modelStatus, (r.ok ? d.tActivated : (c ? d.tNotBetter : JSON.stringify(r.data && r.data.detail))) +
            (c ? " · " + c.reason : ""));
          loadModels();
        });
        actions.appendChild(pick); actions.appendChild(go);
      }
      if (admin && cam.can_rollback) {
        const back = document.createElement("button");
        back.type = "button"; back.textContent = d.tRollback;
        back.addEventListener("click", async function () {
          const r = await api("POST", "/api/labels/models/" + encodeURIComponent(cam.id) + "/rollback");
          say(modelStatus, r.ok ? d.tRolledBack + ": " + r.data.card : JSON.stringify(r.data && r.data.detail));
          loadModels();
        });
        actions.appendChild(back);
      }
      row.appendChild(actions);
      modelTable.appendChild(row);
    });
  }

  load();
  loadModels();
}());
