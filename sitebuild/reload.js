// make serve only (sitebuild/livereload.py): reload this page once the dev server has rebuilt the site.
"use strict";
(function () {
  var events = new EventSource("/_dev/events?since=" + Math.floor(performance.timeOrigin));
  events.addEventListener("reload", function () {
    events.close();
    location.reload();
  });
})();
