// The fans' pages' words and formats (issue 19): the strings of the page's language, which the
// gateway embeds in the page as JSON data (the translation files are the only place they are
// written), and numbers, prices and dates formatted for that language. Loaded before each
// page's own script, which uses `window.marquee.t` and friends. Also wires the language switcher:
// the choice is a cookie, so every page of the site follows it.
(function () {
  "use strict";
  const lang = document.documentElement.lang || "en";
  const el = document.getElementById("strings");
  const strings = el ? JSON.parse(el.textContent) : {};
  // `t("wait.number", { n: 12 })`: the string with its `{name}` slots filled.
  function t(key, vars) {
    const text = strings[key] || key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : text;
  }
  function number(n) { return Number(n).toLocaleString(lang); }
  function money(cents, currency) {
    const cur = String(currency || "gbp").toUpperCase();
    try { return new Intl.NumberFormat(lang, { style: "currency", currency: cur }).format(cents / 100); }
    catch (_) { return (cents / 100).toFixed(2) + " " + cur; }
  }
  // A time in the show's own time zone, in the fan's language.
  function when(iso, timeZone, dateStyle) {
    try { return new Date(iso).toLocaleString(lang, { timeZone, dateStyle: dateStyle || "medium", timeStyle: "short" }); }
    catch (_) { return new Date(iso).toLocaleString(lang); }
  }
  const pick = document.getElementById("lang");
  if (pick) {
    pick.value = lang;
    pick.onchange = () => {
      document.cookie = `marquee_lang=${encodeURIComponent(pick.value)}; Path=/; Max-Age=31536000; SameSite=Lax`;
      location.reload();
    };
  }
  window.marquee = { lang, t, number, money, when };
})();
