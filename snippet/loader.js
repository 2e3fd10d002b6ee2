window.intercomSettings = {
  app_id: "APP_ID",
  api_base: "TRAILMARK_URL"
};
(function () {
  var w = window;
  var ic = w.Intercom;
  if (typeof ic === "function") {
    ic("reattach_activator");
    ic("update", w.intercomSettings);
  } else {
    var d = document;
    var i = function () { i.c(arguments); };
    i.q = [];
    i.c = function (a) { i.q.push(a); };
    w.Intercom = i;
    var l = function () {
      var s = d.createElement("script");
      s.async = true;
      s.src = "TRAILMARK_URL/widget/APP_ID";
      var x = d.getElementsByTagName("script")[0];
      x.parentNode.insertBefore(s, x);
    };
    if (d.readyState === "complete") {
      l();
    } else {
      w.addEventListener("load", l);
    }
  }
})();
