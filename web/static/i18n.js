// Interface texts for the browser code, from the server's catalogue
// (/i18n/<lang>.js sets window.OMS_I18N). OMS_T(id, data) fills go-i18n's
// {{.Name}} fields from data; data.Count picks the "one" form when it is 1
// and the language has one.
(function () {
  'use strict';
  var cat = window.OMS_I18N || { lang: 'en', messages: {} };
  var field = /\{\{\s*\.([A-Za-z]+)\s*\}\}/g;
  window.OMS_T = function (id, data) {
    var m = cat.messages[id];
    if (!m) { return id; }
    var s = (data && data.Count === 1 && m.one) ? m.one : m.other;
    if (data) {
      s = s.replace(field, function (_, k) { return data[k] === undefined || data[k] === null ? '' : String(data[k]); });
    }
    return s;
  };
  window.OMS_LANG = cat.lang;
})();
