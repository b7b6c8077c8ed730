// The run page: follows a run that is still going (the server rendered a
// finished one), cancels it, and re-runs a finished one (all hosts, or the
// failed ones) with the same parameters after the usual confirmation.
(function () {
  'use strict';
  var T = window.OMS_T, api = window.OMS.api;
  var $ = function (id) { return document.getElementById(id); };
  var output = $('output'), status = $('run-status');
  if (!output || !window.OMS) { return; }
  var runID = output.getAttribute('data-run-id');

  function rerun(onlyFailed, btn) {
    btn.disabled = true;
    var url = '/api/v1/runs/' + encodeURIComponent(runID) + '/rerun';
    api('POST', url, { only_failed: onlyFailed, dry_run: true }).then(function (plan) {
      btn.disabled = false;
      window.OMS.confirmRun(plan, function (confirmed) {
        btn.disabled = true;
        api('POST', url, { only_failed: onlyFailed, confirmed_hosts: confirmed }).then(function (res) {
          window.location.assign('/runs/' + encodeURIComponent(res.run_id));
        }).catch(function (e) {
          btn.disabled = false;
          status.textContent = e.message;
          status.className = 'run-state run-state-failed';
        });
      });
    }).catch(function (e) {
      btn.disabled = false;
      status.textContent = e.message;
      status.className = 'run-state run-state-failed';
    });
  }
  [['rerun-all', false], ['rerun-failed', true]].forEach(function (b) {
    var btn = $(b[0]);
    if (btn) { btn.addEventListener('click', function () { rerun(b[1], btn); }); }
  });

  if (output.getAttribute('data-run-status') !== 'running') { return; }
  var cancelBtn = $('cancel');
  var ended = false;
  if (cancelBtn) {
    // Cancel from here too: the dashboard that started a run may be gone.
    cancelBtn.addEventListener('click', function () {
      cancelBtn.disabled = true;
      api('POST', '/api/v1/runs/' + encodeURIComponent(runID) + '/cancel').then(function () {
        // The run may have ended (and said so) before this answer came.
        if (!ended) { status.textContent = T('js.cancelling'); }
      }).catch(function (e) {
        if (ended) { return; }
        status.textContent = T('js.cancel_refused') + ' ' + e.message;
        status.className = 'run-state run-state-failed';
        cancelBtn.disabled = false;
      });
    });
  }
  var was = status.textContent;
  var view = new window.OMS.View({ output: output, progress: $('progress'), progressText: $('progress-text'), summary: $('run-summary'),
    rollout: $('rollout'), canContinue: !!cancelBtn });
  view.clear();
  window.OMS.follow(view, runID, function (end) {
    ended = true;
    status.textContent = window.OMS.endText(end, view);
    status.className = 'run-state run-state-' + end.status;
    status.setAttribute('data-state', end.status);
    if (cancelBtn) { cancelBtn.hidden = true; }
  }, function (state, msg) {
    status.textContent = state === 'live' ? was : msg;
    status.className = state === 'live' ? 'run-state run-state-running' : 'run-state run-state-failed';
    status.setAttribute('data-state', state);
  });
})();
