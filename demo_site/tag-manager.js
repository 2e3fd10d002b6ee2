// A stand-in for Google Tag Manager's container, for the demo and the browser test: after the window loaded, it
// fires each <template data-tag> in order the way GTM fires a Custom HTML tag (its scripts re-created as new
// <script> elements, appended to <body>, so they run after the page, with document.readyState "complete").
window.addEventListener('load', function () {
  setTimeout(function () {
    document.querySelectorAll('template[data-tag]').forEach(function (tag) {
      tag.content.querySelectorAll('script').forEach(function (original) {
        var script = document.createElement('script');
        script.text = original.textContent;
        document.body.appendChild(script);
      });
    });
  }, 50);
});
