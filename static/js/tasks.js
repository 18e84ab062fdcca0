// A job's page: poll its status and update the progress bar, the unit being worked on, errors and the download.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("job");
  if (!box) return;
  const url = box.dataset.statusUrl;
  const $ = (id) => document.getElementById(id);
  let delay = 1000;

  function show(s) {
    box.dataset.state = s.state;
    $("job-state").textContent = s.state_label;
    $("job-count").textContent = s.total ? `${s.done} / ${s.total}` : (s.done ? `已检查 ${s.done} 行` : "");
    const bar = $("job-progress");
    bar.max = s.total || 1;
    bar.value = s.total ? s.done : (s.state === "done" ? 1 : 0);
    $("job-current").textContent = s.current ? `正在处理：${s.current}` : "";
    $("job-message").textContent = s.message || "";
    $("job-unavailable").hidden = !s.unavailable;
    const rows = $("job-error-rows");
    rows.replaceChildren(...s.errors.map((e) => {
      const tr = document.createElement("tr");
      for (const text of [e.unit, e.error]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      return tr;
    }));
    $("job-errors").hidden = s.errors.length === 0;
    if (s.download) {
      const link = $("job-download-link");
      link.href = s.download;
      link.textContent = `下载 ${s.download_name}`;
      $("job-download").hidden = false;
    }
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const s = await response.json();
        show(s);
        if (s.state === "done" || s.state === "failed") return;
        delay = 1000;
      } else {
        delay = Math.min(delay * 2, 10000);
      }
    } catch (err) {
      delay = Math.min(delay * 2, 10000);
    }
    window.setTimeout(poll, delay);
  }

  if (box.dataset.state === "queued" || box.dataset.state === "running") window.setTimeout(poll, 500);
});
