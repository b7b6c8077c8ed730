// Shared by the dashboard and the run page: draws one host's result into
// the output pane. Everything is inserted as text, never as HTML.
(function () {
  'use strict';

  function box(output, ip) {
    var found = null;
    Array.prototype.forEach.call(output.querySelectorAll('.host-result'), function (el) {
      if (el.getAttribute('data-host') === ip) { found = el; }
    });
    if (!found) {
      found = document.createElement('div');
      found.setAttribute('data-host', ip);
      output.appendChild(found);
    }
    return found;
  }

  function line(el, cls, text) {
    var p = document.createElement(cls === 'host-head' ? 'div' : 'pre');
    p.className = cls;
    p.textContent = text;
    el.appendChild(p);
  }

  function pending(output, ip, name) {
    var el = box(output, ip);
    el.className = 'host-result status-pending';
    el.setAttribute('data-status', 'pending');
    el.textContent = '';
    line(el, 'host-head', ip + (name ? ' (' + name + ')' : '') + '  waiting');
  }

  function result(output, r) {
    var el = box(output, r.host.ip);
    el.className = 'host-result status-' + r.status;
    el.setAttribute('data-status', r.status);
    el.textContent = '';
    var head = r.host.ip + (r.host.name ? ' (' + r.host.name + ')' : '') + '  ' + r.status;
    if (typeof r.exit_code === 'number' && r.exit_code >= 0) { head += '  exit=' + r.exit_code; }
    if (r.error) { head += '  ' + r.error; }
    if (r.duration_ns) { head += '  ' + (r.duration_ns / 1e9).toFixed(2) + 's'; }
    line(el, 'host-head', head);
    if (r.stdout) { line(el, 'stdout', r.stdout + (r.stdout_truncated ? '\n[output truncated]' : '')); }
    if (r.stderr) { line(el, 'stderr', r.stderr + (r.stderr_truncated ? '\n[output truncated]' : '')); }
  }

  // noResult marks hosts still waiting when the run ended.
  function noResult(output) {
    Array.prototype.forEach.call(output.querySelectorAll('.host-result.status-pending'), function (el) {
      el.className = 'host-result status-noresult';
      el.setAttribute('data-status', 'noresult');
      el.textContent = '';
      line(el, 'host-head', el.getAttribute('data-host') + '  no result');
    });
  }

  // summary counts the hosts of the pane by status: "2 ok, 1 failed".
  function summary(output) {
    var counts = {}, order = [];
    Array.prototype.forEach.call(output.querySelectorAll('.host-result'), function (el) {
      var s = el.getAttribute('data-status') || 'pending';
      if (!counts[s]) { counts[s] = 0; order.push(s); }
      counts[s]++;
    });
    return order.map(function (s) { return counts[s] + ' ' + (s === 'noresult' ? 'no result' : s); }).join(', ');
  }

  // lostMessage is shown when the browser gives up on a run's stream (it
  // does so when the server refuses it, e.g. after the session ended).
  var lostMessage = 'lost the live output of this run: the server refused the event stream ' +
    '(has your session ended? log in again); the run itself goes on, see its details page';

  // follow streams a run's events into the pane; onDone gets the end.
  // onState, if given, hears 'reconnecting' (the stream broke and the
  // browser retries), 'live' (it is back) and 'lost' (the browser gave up).
  function follow(output, runID, onDone, onState) {
    var src = new EventSource('/api/v1/runs/' + encodeURIComponent(runID) + '/events');
    var broken = false, ended = false;
    var tell = function (state, msg) { if (onState) { onState(state, msg); } };
    src.addEventListener('result', function (ev) { result(output, JSON.parse(ev.data)); });
    src.addEventListener('done', function (ev) {
      ended = true;
      src.close();
      noResult(output);
      onDone(JSON.parse(ev.data));
    });
    src.addEventListener('open', function () {
      if (broken) { broken = false; tell('live', ''); }
    });
    src.addEventListener('error', function () {
      if (ended) { return; }
      if (src.readyState === EventSource.CLOSED) {
        ended = true;
        tell('lost', lostMessage);
        return;
      }
      broken = true;
      tell('reconnecting', 'connection to the server lost; reconnecting…');
    });
    return src;
  }

  window.OMS = { pending: pending, result: result, noResult: noResult, summary: summary, follow: follow };
})();
