// The rehearsal studio's pages: live state over server-sent events, the offer builder.
// Every text from the server is placed with textContent, never parsed as HTML.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const base = body.dataset.base;
  if (!page || !base) return;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function byId(id) { return document.getElementById(id); }
  function fixed(value) { return Number(value).toFixed(3); }
  function show(node, visible) { if (node) node.hidden = !visible; }

  function termsTable(table, rows) {
    table.replaceChildren();
    for (const row of rows || []) {
      const tr = el("tr");
      tr.append(el("th", "", row.issue), el("td", "", row.value));
      table.append(tr);
    }
  }

  function findings(list, items) {
    list.replaceChildren();
    for (const item of items || []) {
      const li = el("li", "finding " + (item.level || ""));
      li.textContent = item.message || item;
      list.append(li);
    }
  }

  function problem(state) {
    const node = byId("problem");
    if (!node) return;
    node.textContent = state.problem ? "The run stopped: " + state.problem : "";
    show(node, Boolean(state.problem));
  }

  // --- the idle countdown: the server's own deadline, counted down between updates -----
  let countdown = null;
  function clock(seconds) {
    const whole = Math.ceil(seconds);
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }
  function tick() {
    const node = byId("countdown");
    if (!node) return;
    show(node, Boolean(countdown));
    if (!countdown) return;
    const left = Math.max(0, countdown.seconds_left - (performance.now() - countdown.at) / 1000);
    const when = left > 0 ? "in " + clock(left) : "now";
    const you = page === "seat" && countdown.party === body.dataset.party;
    node.textContent = countdown.on_idle === "pass" ?
      (you ? "You pass " + when + " (no move: the offer on the table stays)" :
        countdown.name + " passes " + when) :
      (you ? "Your" : countdown.name + "'s") + " turn is handed to the " + countdown.strategy +
        " strategy " + when;
    node.dataset.seconds = String(Math.ceil(left));
    node.classList.toggle("soon", left <= 10);
  }

  // --- live state --------------------------------------------------------------------
  let render = function () {};
  let lastVersion = -1;
  let epoch = null;
  const retired = new Set();
  function receive(state) {
    // Only a newer state is shown: the answer to the opening /state request (or to a poll)
    // can arrive after the stream has brought a later one, and showing it would take the
    // page back (to "not your turn") until the next change.  Versions are compared only
    // within one server's run of the rehearsal (its epoch): a restarted server (another
    // epoch) may count from below what the page shows (its clock set back, another
    // machine), and is shown at once; a state of an epoch the page has left is not.
    if (typeof state.version !== "number" || typeof state.epoch !== "string") return;
    if (state.epoch === epoch) {
      if (!(state.version > lastVersion)) return;
    } else {
      if (retired.has(state.epoch)) return;
      if (epoch !== null) retired.add(epoch);
      epoch = state.epoch;
    }
    lastVersion = state.version;
    countdown = state.countdown ? Object.assign({at: performance.now()}, state.countdown) : null;
    render(state);
    tick();
    body.dataset.version = String(state.version);
    body.dataset.epoch = state.epoch;
  }
  function connect() {
    if (window.EventSource) {
      const source = new EventSource(base + "/events");
      source.addEventListener("state", function (event) { receive(JSON.parse(event.data)); });
      source.onopen = function () { body.dataset.live = "yes"; };
      source.onerror = function () { body.dataset.live = "no"; };
    }
    // A reconnecting page catches up at once, and a page without SSE polls.
    fetch(base + "/state").then(function (r) { return r.json(); }).then(receive);
    setInterval(function () {
      if (body.dataset.live !== "yes") {
        fetch(base + "/state").then(function (r) { return r.json(); }).then(receive)
          .catch(function () {});
      }
    }, 3000);
    setInterval(tick, 250);
  }

  function post(path, payload) {
    payload.csrf = body.dataset.csrf;
    return fetch(base + path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || response.statusText);
        return data;
      });
    });
  }

  // --- the seat --------------------------------------------------------------------
  if (page === "seat") {
    const party = body.dataset.party;
    const builder = byId("builder");
    let current = null;
    let warned = false;

    function fieldsets() { return Array.from(builder.querySelectorAll("fieldset.issue")); }

    function outputs() {
      for (const input of builder.querySelectorAll("input[type=range]")) {
        const out = input.parentNode.querySelector("output");
        if (out) out.textContent = input.value + (out.dataset.unit === "%" ? "%" : out.dataset.unit ? " " + out.dataset.unit : "");
      }
    }

    function draftTerms() {
      const terms = {};
      for (const set of fieldsets()) {
        const issue = set.dataset.issue;
        if (set.dataset.kind === "split") {
          const shares = {};
          for (const input of set.querySelectorAll("input.share")) {
            shares[input.dataset.party] = Number(input.value);
          }
          terms[issue] = shares;
        } else if (set.dataset.kind === "numeric") {
          terms[issue] = Number(set.querySelector("input").value);
        } else {
          terms[issue] = set.querySelector("select").value;
        }
      }
      return terms;
    }

    function setTerms(terms) {
      for (const set of fieldsets()) {
        const value = terms[set.dataset.issue];
        if (value === undefined) continue;
        if (set.dataset.kind === "split") {
          for (const input of set.querySelectorAll("input.share")) {
            input.value = value[input.dataset.party];
          }
        } else if (set.dataset.kind === "numeric") {
          set.querySelector("input").value = value;
        } else {
          set.querySelector("select").value = value;
        }
      }
      outputs();
      changed();
    }

    // Linked sliders: moving one share takes the difference from the others, nearest
    // first, so the shares always sum to 100 and stay on the step.
    function rebalance(set, moved) {
      const inputs = Array.from(set.querySelectorAll("input.share"));
      const step = Number(moved.step) || 1;
      let excess = inputs.reduce(function (sum, i) { return sum + Number(i.value); }, 0) - 100;
      const start = inputs.indexOf(moved);
      for (let k = 1; k < inputs.length && excess !== 0; k++) {
        const other = inputs[(start + k) % inputs.length];
        const value = Number(other.value);
        const next = Math.min(100, Math.max(0, value - excess));
        const snapped = Math.round(next / step) * step;
        excess -= value - snapped;
        other.value = snapped;
      }
      if (excess !== 0) moved.value = Number(moved.value) - excess;
    }

    function initialSplits() {
      for (const set of fieldsets()) {
        if (set.dataset.kind !== "split") continue;
        const inputs = Array.from(set.querySelectorAll("input.share"));
        const step = Number(inputs[0].step) || 1;
        const even = Math.floor(100 / inputs.length / step) * step;
        inputs.forEach(function (i) { i.value = even; });
        inputs[inputs.length - 1].value = 100 - even * (inputs.length - 1);
      }
    }

    let timer = null;
    let asked = 0;
    function changed() {
      warned = false;
      asked++;  // an answer already on its way is for the old draft: drop it
      builder.dataset.pending = "1";
      byId("propose").textContent = "Propose these terms";
      clearTimeout(timer);
      timer = setTimeout(evaluateDraft, 80);
    }

    function evaluateDraft() {
      const ask = ++asked;
      const terms = JSON.stringify(draftTerms());
      fetch(base + "/utility?terms=" + encodeURIComponent(terms))
        .then(function (r) { return r.json(); })
        .then(function (result) {
          if (ask !== asked) return;
          delete builder.dataset.pending;
          const list = byId("warnings");
          list.replaceChildren();
          const out = byId("draft-utility");
          if (!result.valid) {
            out.textContent = "—";
            delete out.dataset.value;
            list.append(el("li", "", result.problem));
            builder.dataset.warnings = "1";
            return;
          }
          out.textContent = fixed(result.utility);
          out.dataset.value = String(result.utility);
          byId("draft-bar").style.width = (100 * result.utility).toFixed(1) + "%";
          byId("draft-reservation").style.left = (100 * result.reservation_value).toFixed(1) + "%";
          const warnings = [];
          if (result.below_reservation) {
            warnings.push("Below your reservation value: you would be better off without a deal.");
          }
          for (const line of result.red_lines) warnings.push("Crosses your red line: " + line);
          for (const w of warnings) list.append(el("li", "", w));
          builder.dataset.warnings = String(warnings.length);
          out.dataset.ready = "yes";
        });
    }

    function move(kind) {
      const error = byId("move-error");
      show(error, false);
      const rationale = byId("rationale").value.trim();
      if (!rationale) {
        error.textContent = "Give a short reason: every move is recorded with who made it and why.";
        show(error, true);
        return;
      }
      const payload = {kind: kind, rationale: rationale};
      if (kind === "propose") {
        if (builder.dataset.warnings !== "0" && !warned) {
          warned = true;
          byId("propose").textContent = "Propose anyway";
          error.textContent = "Check the warnings above; press again to propose anyway.";
          show(error, true);
          return;
        }
        payload.terms = draftTerms();
      }
      if (kind === "walk_away" && !window.confirm("Walk away and end the negotiation without a deal?")) return;
      setButtons([]);
      post("/move", payload).then(function () {
        byId("rationale").value = "";
        delete builder.dataset.touched;
      }).catch(function (e) {
        error.textContent = e.message;
        show(error, true);
        if (current) setButtons(current.legal);
      });
    }

    function setButtons(legal) {
      byId("propose").disabled = legal.indexOf("propose") < 0;
      byId("accept").disabled = legal.indexOf("accept") < 0;
      byId("walk").disabled = legal.indexOf("walk_away") < 0;
    }

    function chart(state) {
      const svg = byId("chart");
      const ns = "http://www.w3.org/2000/svg";
      svg.replaceChildren();
      const W = 400, H = 180, left = 30, bottom = 20, top = 8;
      const rounds = Math.max(state.rounds || 1, 1);
      const x = function (round) { return left + (W - left - 8) * (round - 1) / Math.max(rounds - 1, 1); };
      const y = function (u) { return top + (H - top - bottom) * (1 - u); };
      function add(tag, attrs, text) {
        const node = document.createElementNS(ns, tag);
        for (const key in attrs) node.setAttribute(key, attrs[key]);
        if (text !== undefined) node.textContent = text;
        svg.append(node);
        return node;
      }
      add("line", {x1: left, y1: y(0), x2: W - 8, y2: y(0), class: "axis"});
      add("line", {x1: left, y1: y(0), x2: left, y2: y(1), class: "axis"});
      add("text", {x: 2, y: y(1) + 4, class: "tick"}, "1.0");
      add("text", {x: 2, y: y(0), class: "tick"}, "0.0");
      add("text", {x: W - 60, y: H - 4, class: "tick"}, "round " + rounds);
      add("line", {x1: left, y1: y(state.reservation_value), x2: W - 8,
        y2: y(state.reservation_value), class: "reservation"});
      for (const entry of state.history) {
        if (entry.utility === undefined) continue;
        const mine = entry.party === party;
        add("circle", {cx: x(entry.round), cy: y(entry.utility), r: entry.blocked ? 3 : 4,
          class: (mine ? "mine" : "theirs") + (entry.blocked ? " blocked" : "")});
      }
    }

    function history(state) {
      const list = byId("history");
      list.replaceChildren();
      for (const entry of state.history.slice().reverse()) {
        const li = el("li", "line " + (entry.blocked ? "blocked" : entry.kind));
        li.append(el("span", "round", "R" + entry.round), " ",
          el("strong", "", entry.party === party ? "You" : entry.name), " ",
          el("span", "kind", entry.blocked ? "blocked" : entry.kind.replace("_", " ")));
        if (entry.utility !== undefined) li.append(" ", el("span", "worth", fixed(entry.utility)));
        if (entry.summary) li.append(el("div", "terms", entry.summary));
        if (entry.rationale) li.append(el("em", "", entry.rationale));
        if (entry.feedback) li.append(el("div", "problem", entry.feedback));
        list.append(li);
      }
    }

    function outcome(state) {
      const card = byId("outcome-card");
      const result = state.outcome;
      show(card, Boolean(result));
      show(byId("move-card"), !result && !state.problem);
      show(byId("standing-card"), !result);
      if (!result) return;
      byId("outcome-title").textContent = result.status === "agreement" ? "Agreement" : "No agreement";
      byId("outcome-reason").textContent = result.reason;
      byId("outcome-zopa").textContent = result.zopa || "";
      show(byId("outcome-zopa"), Boolean(result.zopa));
      termsTable(byId("outcome-terms"), result.terms);
      byId("outcome-utility").textContent = result.utility === undefined ? "" :
        "Worth " + fixed(result.utility) + " to you: a gain of " +
        (result.gain >= 0 ? "+" : "") + fixed(result.gain) + " over your reservation value." +
        (result.fairness && result.fairness.nash_ratio !== undefined ?
          " Nash product " + Math.round(100 * result.fairness.nash_ratio) + "% of the best possible." : "");
      findings(byId("outcome-findings"), result.findings);
      const signoff = state.signoff;
      const open = signoff && signoff.status === "pending sign-off" && signoff.can_sign && !signoff.decided;
      show(byId("signoff"), Boolean(open));
      let said = "";
      if (signoff) {
        said = "Status: " + signoff.status + ".";
        if (signoff.decided) said += " You " + signoff.decided + "d.";
        if (signoff.approved && signoff.approved.length) said += " Approved so far: " + signoff.approved.join(", ") + ".";
        if (signoff.status === "pending sign-off" && !signoff.can_sign) said += " This server holds no signatory key for you; sign with negotiate review.";
      }
      byId("signoff-status").textContent = said;
    }

    render = function (state) {
      current = state;
      problem(state);
      const status = byId("status");
      if (state.outcome) {
        status.textContent = "The negotiation has ended.";
      } else if (state.your_turn) {
        status.textContent = "Your turn — round " + state.round + " of " + state.rounds + ".";
      } else if (state.waiting_for) {
        status.textContent = "Waiting for " + state.waiting_for + " — round " + state.round + " of " + state.rounds + ".";
      } else {
        status.textContent = "The agents are moving — round " + state.round + " of " + state.rounds + ".";
      }
      body.dataset.turn = state.your_turn ? "yours" : "theirs";
      const standing = byId("standing");
      standing.replaceChildren();
      if (state.standing) {
        const s = state.standing;
        standing.append(el("p", "", "From " + (s.party === party ? "you" : s.name) + " in round " + s.round + ":"));
        standing.append(el("p", "terms", s.summary));
        const worth = el("p", "worth-line");
        worth.append("Worth ", el("strong", "standing-utility", fixed(s.utility)),
          " to you (reservation " + fixed(state.reservation_value) + ").");
        standing.append(worth);
        if (!builder.dataset.touched) setTerms(s.terms);
      } else {
        standing.append(el("p", "muted", "No offer on the table yet."));
      }
      const mine = state.history.filter(function (e) { return e.party === party; });
      const last = mine[mine.length - 1];
      show(byId("feedback-card"), Boolean(last && last.blocked));
      byId("feedback").textContent = last && last.blocked ? last.feedback : "";
      setButtons(state.your_turn ? state.legal : []);
      chart(state);
      history(state);
      outcome(state);
    };

    // "change" too: a choice set by autofill, assistive tools or WebDriver may fire only it.
    function edited(event) {
      builder.dataset.touched = "yes";
      const target = event.target;
      if (target.classList.contains("share")) rebalance(target.closest("fieldset"), target);
      outputs();
      changed();
    }
    builder.addEventListener("input", edited);
    builder.addEventListener("change", edited);
    byId("propose").addEventListener("click", function () { move("propose"); });
    byId("accept").addEventListener("click", function () { move("accept"); });
    byId("walk").addEventListener("click", function () { move("walk_away"); });
    byId("load-standing").addEventListener("click", function () {
      if (current && current.standing) setTerms(current.standing.terms);
    });
    function decide(decision) {
      const error = byId("signoff-error");
      show(error, false);
      post("/signoff", {decision: decision, comment: byId("signoff-comment").value})
        .catch(function (e) { error.textContent = e.message; show(error, true); });
    }
    byId("approve").addEventListener("click", function () { decide("approve"); });
    byId("reject").addEventListener("click", function () { decide("reject"); });
    initialSplits();
    outputs();
    changed();
  }

  // --- the observer ----------------------------------------------------------------
  if (page === "observer") {
    render = function (state) {
      problem(state);
      const status = byId("status");
      status.textContent = state.outcome ? "The negotiation has ended." :
        state.waiting_for ? "Waiting for " + state.waiting_for + "." : "The agents are moving.";
      const log = byId("log");
      log.replaceChildren();
      for (const line of state.lines.slice().reverse()) {
        const li = el("li", "line " + line.kind);
        li.append(el("span", "round", "R" + line.round), " ", el("strong", "", line.name || line.party),
          " ", el("span", "kind", line.kind.replace("_", " ")));
        if (line.verdict && line.verdict !== "pass") li.append(" ", el("span", "verdict " + line.verdict, line.verdict));
        if (line.summary) li.append(el("div", "terms", line.summary));
        if (line.rationale) li.append(el("em", "", line.rationale));
        if (line.feedback) li.append(el("div", "problem", line.feedback));
        for (const f of line.findings || []) li.append(el("div", "finding", f));
        log.append(li);
      }
      const result = state.outcome;
      show(byId("outcome-card"), Boolean(result));
      if (!result) return;
      byId("outcome-title").textContent = result.status === "agreement" ? "Agreement" : "No agreement";
      byId("outcome-reason").textContent = result.reason;
      byId("outcome-zopa").textContent = result.zopa || "";
      show(byId("outcome-zopa"), Boolean(result.zopa));
      termsTable(byId("outcome-terms"), result.terms);
      findings(byId("outcome-findings"), result.findings);
      show(byId("signoff-title"), result.status === "agreement");
      const list = byId("signoffs");
      list.replaceChildren();
      for (const s of state.signoffs) {
        list.append(el("li", "", s.decision + "d by " + s.who + (s.org ? " for " + s.org : "") +
          (s.comment ? ": “" + s.comment + "”" : "")));
      }
      show(byId("charter"), Boolean(state.signoff && state.signoff.ratified));
    };
  }

  connect();
})();
