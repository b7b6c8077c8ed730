// The run page follows a run that is still going.
(function () {
  'use strict';
  var output = document.getElementById('output');
  var status = document.getElementById('run-status');
  if (!output || !window.OMS || output.getAttribute('data-run-status') !== 'running') { return; }
  var was = status.textContent;
  window.OMS.follow(output, output.getAttribute('data-run-id'), function (end) {
    status.textContent = end.status + (end.error ? ': ' + end.error : '') + ' (' + window.OMS.summary(output) + ')';
    status.className = 'run-state-' + end.status;
  }, function (state, msg) {
    status.textContent = state === 'live' ? was : msg;
    status.className = state === 'live' ? 'run-state-running' : 'run-state-failed';
    status.setAttribute('data-state', state);
  });
})();
