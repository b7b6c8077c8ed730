// The run page follows a run that is still going.
(function () {
  'use strict';
  var output = document.getElementById('output');
  var status = document.getElementById('run-status');
  if (!output || !window.OMS || output.getAttribute('data-run-status') !== 'running') { return; }
  window.OMS.follow(output, output.getAttribute('data-run-id'), function (end) {
    status.textContent = end.status + (end.error ? ': ' + end.error : '') + ' (' + window.OMS.summary(output) + ')';
    status.className = 'run-state-' + end.status;
  });
})();
