// estate-edge panel: the little script the pages use. No libraries, no inline code (CSP: script-src 'self').
// - forms with data-confirm ask first
// - the live alarm list re-fetches its rows every few seconds (304 while nothing changed)
// - a device page refreshes its live values from the JSON API
"use strict";

(function () {
  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  function formatNumber(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-3)) return value.toPrecision(3);
    const text = value.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
    return text === "-0" ? "0" : text;
  }

  function formatTime(iso, tz) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    try {
      return new Intl.DateTimeFormat("sv-SE", {
        timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
      }).format(date);
    } catch (e) {
      return date.toISOString();
    }
  }

  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  function liveAlarms() {
    const body = document.getElementById("alarm-rows");
    if (!body) return;
    const dot = document.querySelector(".live-dot");
    const total = document.getElementById("alarm-total");
    let etag = body.dataset.etag || "";
    let busy = false;
    async function poll() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const response = await fetch(body.dataset.src, {
          headers: etag ? { "If-None-Match": etag } : {}, credentials: "same-origin", cache: "no-store",
        });
        if (response.status === 200) {
          body.innerHTML = await response.text(); // server-rendered, autoescaped rows
          etag = response.headers.get("etag") || "";
          if (total && response.headers.get("x-alarm-total") !== null) {
            total.textContent = response.headers.get("x-alarm-total");
          }
          body.dispatchEvent(new CustomEvent("alarms-updated", { bubbles: true }));
        } else if (response.status === 401) {
          window.location.reload();
          return;
        }
        if (dot) dot.classList.toggle("stale", !(response.status === 200 || response.status === 304));
      } catch (e) {
        if (dot) dot.classList.add("stale");
      } finally {
        busy = false;
      }
    }
    window.setInterval(poll, 3000);
  }

  function liveDevice() {
    const table = document.getElementById("live-values");
    if (!table) return;
    const tz = table.dataset.tz || undefined;
    // Points and qualities in the viewer's language (the page's catalogue), never the raw keys.
    const pointNames = JSON.parse(table.dataset.pointNames || "{}");
    const qualityNames = JSON.parse(table.dataset.qualityNames || "{}");
    async function poll() {
      if (document.hidden) return;
      try {
        const response = await fetch("/api/v1/devices/" + encodeURIComponent(table.dataset.device), {
          credentials: "same-origin", cache: "no-store",
        });
        if (!response.ok) return;
        const device = await response.json();
        const tbody = table.tBodies[0];
        device.latest.forEach(function (item) {
          let row = tbody.querySelector('tr[data-point="' + CSS.escape(item.point) + '"]');
          if (!row) {
            const placeholder = tbody.querySelector("td.hint");
            if (placeholder) placeholder.parentElement.remove();
            row = document.createElement("tr");
            row.dataset.point = item.point;
            const name = document.createElement("td");
            name.textContent = pointNames[item.point] || item.point;
            name.title = item.point;
            const value = document.createElement("td");
            value.className = "num";
            value.innerHTML = '<span class="v"></span> <span class="u"></span>';
            const quality = document.createElement("td");
            quality.className = "q";
            const ts = document.createElement("td");
            ts.className = "ts";
            row.append(name, value, quality, ts);
            tbody.append(row);
          }
          row.querySelector(".v").textContent = formatNumber(item.value);
          const valueName = row.querySelector(".vn");
          if (valueName) {  // a state point: the name of its value (the row carries the names)
            const names = JSON.parse(row.dataset.valueNames || "{}");
            valueName.textContent = item.value === null ? "" : (names[String(Math.round(item.value))] || "");
          }
          row.querySelector(".u").textContent = item.unit;
          const quality = row.querySelector(".q");
          quality.className = "q q-" + item.quality;
          quality.textContent = qualityNames[item.quality] || item.quality;
          row.querySelector(".ts").textContent = formatTime(item.ts, tz);
        });
      } catch (e) {
        /* the next poll tries again */
      }
    }
    window.setInterval(poll, 5000);
  }

  onReady(function () {
    confirmForms();
    liveAlarms();
    liveDevice();
  });
})();
