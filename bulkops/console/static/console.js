// The console works without this file; it adds the live progress of an open bulk and loads
// an error group's operations in place when the group is expanded.
"use strict";

function refreshProgress(section) {
  var url = section.getAttribute("data-progress-url");
  fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.json();
    })
    .then(function (progress) {
      section.querySelector("[data-status]").textContent = progress.status_name;
      var bar = section.querySelector("[data-progress]");
      bar.max = progress.total || 1;
      bar.value = progress.done;
      bar.setAttribute("aria-label", progress.done + " of " + progress.total + " operations done");
      section.querySelector("[data-progress-text]").textContent = progress.done + " / " + progress.total;
      Object.keys(progress.counts).forEach(function (status) {
        var count = section.querySelector('[data-count="' + status + '"]');
        if (count) { count.textContent = progress.counts[status]; }
      });
      // 0 not started, 1 in progress: still open. Once finished, the failures are final:
      // the page is loaded again to show them grouped.
      if (progress.status <= 1) {
        setTimeout(function () { refreshProgress(section); }, 2000);
      } else {
        window.location.reload();
      }
    })
    .catch(function () { setTimeout(function () { refreshProgress(section); }, 5000); });
}

function loadGroup(details) {
  if (details.getAttribute("data-loaded")) { return; }
  details.setAttribute("data-loaded", "1");
  var target = details.querySelector("[data-items]");
  fetch(details.getAttribute("data-items-url"), {
    credentials: "same-origin",
    headers: { "X-Fragment": "1" },
  })
    .then(function (response) { return response.text(); })
    // Rendered and escaped by the server.
    .then(function (html) { target.innerHTML = html; });
}

document.addEventListener("DOMContentLoaded", function () {
  var section = document.querySelector("[data-progress-url]");
  if (section) { setTimeout(function () { refreshProgress(section); }, 2000); }
  document.querySelectorAll("details[data-items-url]").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (details.open) { loadGroup(details); }
    });
  });
});
