// Before first paint: the remembered language (also picks the localized manifest).
// A classic script, not a module: it must run before the body is parsed.
try {
  var l = localStorage.getItem("sq.locale");
  if (l === "zh-CN" || l === "zh-HK" || l === "en") {
    document.documentElement.lang = l;
    document.getElementById("manifest").href = "/app/manifest." + l + ".webmanifest";
  }
} catch (e) {}
