// Siraya console: draws the charts from the page's JSON, streams the playground, copies secrets.
// No inline script anywhere (the Content-Security-Policy forbids it): everything starts here.
(function () {
  "use strict";

  var COLOURS = { requests: "#0b57d0", cost: "#1b7f3b", errors: "#b3261e", p95: "#8a5300" };

  // Spend is often fractions of a cent: "$0.000015", not "1.5E-5".
  function dollars(value) {
    var number = Number(value);
    if (number === 0) return "$0";
    return "$" + (Math.abs(number) < 0.01 ? number.toPrecision(2) : number.toFixed(2));
  }

  function drawCharts(root) {
    var source = document.getElementById("chart-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.rendered) return;
      var name = canvas.dataset.chart;
      var colour = COLOURS[name] || "#0b57d0";
      new Chart(canvas, {
        type: canvas.dataset.kind || "bar",
        data: {
          labels: data.labels,
          datasets: [{ label: canvas.getAttribute("aria-label"), data: data[name], backgroundColor: colour,
                       borderColor: colour, spanGaps: true, pointRadius: 3, borderWidth: 2 }]
        },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          plugins: { legend: { display: false } },
          scales: {
            x: { ticks: { maxTicksLimit: 8, autoSkip: true } },
            y: { beginAtZero: true, ticks: { callback: name === "cost" ? dollars : undefined } }
          }
        }
      });
      canvas.dataset.rendered = String(data[name].filter(function (v) { return v; }).length);
    });
  }

  function copyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.getElementById(button.dataset.copy);
        field.select();
        if (navigator.clipboard) navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
      });
    });
  }

  function show(id, text) {
    var element = document.getElementById(id);
    element.textContent = text;
    return element;
  }

  function playground() {
    var form = document.getElementById("playground");
    if (!form) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var fields = new FormData(form);
      var maxTokens = parseInt(fields.get("max_tokens"), 10);
      var body = {
        model: fields.get("model"), key: fields.get("key"), system: fields.get("system"),
        prompt: fields.get("prompt"), max_tokens: isNaN(maxTokens) ? null : maxTokens
      };
      var answer = show("answer", "");
      var failure = document.getElementById("answer-error");
      var usage = document.getElementById("answer-usage");
      failure.hidden = true;
      usage.hidden = true;
      answer.setAttribute("aria-busy", "true");
      form.querySelector("button[type=submit]").disabled = true;
      fetch(form.getAttribute("action"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify(body)
      }).then(function (response) {
        if (!response.ok) {
          return response.json().then(function (error) { throw new Error(error.error.message); },
                                      function () { throw new Error("HTTP " + response.status); });
        }
        return readEvents(response.body.getReader(), function (chunk) {
          if (chunk.error) throw new Error(chunk.error.message);
          (chunk.choices || []).forEach(function (choice) {
            if (choice.delta && choice.delta.content) answer.textContent += choice.delta.content;
          });
          if (chunk.provider) show("usage-provider", chunk.provider + " / " + chunk.model);
          if (chunk.usage) {
            show("usage-prompt", chunk.usage.prompt_tokens);
            show("usage-completion", chunk.usage.completion_tokens);
            show("usage-cost", chunk.usage.cost === undefined ? "—" : "$" + chunk.usage.cost.toFixed(6));
            usage.hidden = false;
          }
        });
      }).catch(function (error) {
        failure.textContent = error.message;
        failure.hidden = false;
      }).finally(function () {
        answer.setAttribute("aria-busy", "false");
        answer.dataset.done = "1";
        form.querySelector("button[type=submit]").disabled = false;
      });
    });
  }

  // Server-sent events from a fetch body: one JSON object per `data:` line, until [DONE].
  function readEvents(reader, onChunk) {
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (step) {
        if (step.done) return;
        buffer += decoder.decode(step.value, { stream: true });
        var events = buffer.split("\n\n");
        buffer = events.pop();
        events.forEach(function (event) {
          event.split("\n").forEach(function (line) {
            if (line.indexOf("data: ") !== 0) return;
            var payload = line.slice(6);
            if (payload === "[DONE]") return;
            onChunk(JSON.parse(payload));
          });
        });
        return pump();
      });
    }
    return pump();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    copyButtons(document);
    playground();
  });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
})();
