// Asks before submitting a form marked "confirm" (deletions), since an
// inline onsubmit handler is forbidden by the content security policy.
(function () {
  'use strict';
  document.addEventListener('submit', function (ev) {
    var f = ev.target;
    if (f && f.classList && f.classList.contains('confirm') && !window.confirm(window.OMS_T('js.really_delete'))) {
      ev.preventDefault();
    }
  }, true);
})();
