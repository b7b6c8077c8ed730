// The confirmation before a run (the original's 提交确认): the module, its
// parameters and every target, from the server's dry run of the request.
// A large run, or a risky module, needs the number of hosts typed in.
// Enter runs (once confirmed), Esc or Cancel runs nothing.
(function () {
  'use strict';
  var T = window.OMS_T;
  var $ = function (id) { return document.getElementById(id); };
  // Targets listed one element each up to this many; beyond, as text.
  var LIST_MAX = 200;

  // confirmRun shows plan (POST /api/v1/runs with dry_run) and calls
  // onRun(confirmedHosts) when the operator confirms; nothing on cancel.
  function confirmRun(plan, onRun) {
    var dlg = $('confirm-dialog');
    var hosts = plan.hosts || [];
    $('confirm-module').textContent = plan.module_id + ' ' + plan.module_name;
    var params = $('confirm-params');
    params.textContent = '';
    var names = Object.keys(plan.params || {}).sort();
    if (names.length === 0) { params.textContent = T('common.none'); }
    names.forEach(function (n) {
      var d = document.createElement('div');
      var c = document.createElement('code');
      c.textContent = n + ' = ' + plan.params[n];
      d.appendChild(c);
      params.appendChild(d);
    });
    $('confirm-count').textContent = T('confirm.host_count', { Count: hosts.length });
    var list = $('confirm-hosts'), text = $('confirm-hosts-text');
    var label = function (h) { return h.ip + (h.name ? ' (' + h.name + ')' : ''); };
    list.textContent = '';
    text.textContent = '';
    if (hosts.length > LIST_MAX) {
      // Thousands of targets: one scrolling block of text, not thousands
      // of elements to lay out.
      text.textContent = hosts.map(function (h, i) { return (i + 1) + '. ' + label(h); }).join('\n');
    } else {
      var frag = document.createDocumentFragment();
      hosts.forEach(function (h) {
        var li = document.createElement('li');
        li.textContent = label(h);
        frag.appendChild(li);
      });
      list.appendChild(frag);
    }
    list.hidden = hosts.length > LIST_MAX;
    text.hidden = hosts.length <= LIST_MAX;
    list.classList.toggle('long', hosts.length > 12);
    $('confirm-risky').hidden = !plan.risky;
    var typed = $('confirm-typed'), input = $('confirm-typed-input'), err = $('confirm-error');
    typed.hidden = !plan.typed_confirmation;
    input.value = '';
    err.textContent = '';
    $('confirm-typed-label').textContent = plan.risky ? T('confirm.type_risky', { Count: hosts.length })
      : T('confirm.type_large', { Count: hosts.length, Limit: plan.large_run_hosts });
    var form = $('confirm-form');
    var finish = function () {
      form.removeEventListener('submit', onSubmit);
      $('confirm-cancel').removeEventListener('click', onCancel);
      dlg.removeEventListener('cancel', onEsc);
    };
    var onSubmit = function (ev) {
      ev.preventDefault();
      var n = 0;
      if (plan.typed_confirmation) {
        n = parseInt(input.value.trim(), 10);
        if (n !== hosts.length) {
          err.textContent = T('confirm.type_mismatch', { Count: hosts.length });
          input.focus();
          return;
        }
      }
      finish();
      dlg.close('run');
      onRun(n);
    };
    var onCancel = function () { finish(); dlg.close('cancel'); };
    var onEsc = function () { finish(); };
    form.addEventListener('submit', onSubmit);
    $('confirm-cancel').addEventListener('click', onCancel);
    dlg.addEventListener('cancel', onEsc);
    dlg.showModal();
    (plan.typed_confirmation ? input : $('confirm-run')).focus();
  }

  window.OMS = window.OMS || {};
  window.OMS.confirmRun = confirmRun;
})();
