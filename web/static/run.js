// The run page follows a run that is still going.
(function () {
  'use strict';
  var output = document.getElementById('output');
  var status = document.getElementById('run-status');
  if (!output || !window.OMS || output.getAttribute('data-run-status') !== 'running') { return; }
  var was = status.textContent;
  var runID = output.getAttribute('data-run-id');
  var cancelBtn = document.getElementById('cancel');
  if (cancelBtn) {
    // Cancel from here too: the dashboard that started a run may be gone.
    cancelBtn.addEventListener('click', function () {
      cancelBtn.disabled = true;
      fetch('/api/v1/runs/' + encodeURIComponent(runID) + '/cancel', {
        method: 'POST', credentials: 'same-origin', headers: { 'Accept': 'application/json' }
      }).then(function (resp) {
        if (resp.ok) { status.textContent = 'cancelling…'; return; }
        return resp.json().catch(function () { return null; }).then(function (data) {
          status.textContent = 'cancel refused: ' + ((data && data.error) ? data.error : 'HTTP ' + resp.status);
          status.className = 'run-state-failed';
        });
      }).catch(function (e) {
        status.textContent = 'cancel failed: ' + e.message;
        status.className = 'run-state-failed';
        cancelBtn.disabled = false;
      });
    });
  }
  window.OMS.follow(output, runID, function (end) {
    status.textContent = end.status + (end.error ? ': ' + end.error : '') + ' (' + window.OMS.summary(output) + ')';
    status.className = 'run-state-' + end.status;
    if (cancelBtn) { cancelBtn.hidden = true; }
  }, function (state, msg) {
    status.textContent = state === 'live' ? was : msg;
    status.className = state === 'live' ? 'run-state-running' : 'run-state-failed';
    status.setAttribute('data-state', state);
  });
})();
