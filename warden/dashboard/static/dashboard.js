// Release Warden dashboard: every request htmx makes carries X-Request-Id (new per request) and
// X-Trace-Id (the page's: the release's own trace id on a release page). The server records any
// failed call as an `api.failure` audit event, so nothing here has to report it.
(function () {
  function newId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }
  var fallbackTrace = newId();
  function traceId() {
    // the page's own element: a boosted navigation swaps the body, never the head
    var ids = document.getElementById("page-ids");
    return (ids && ids.dataset.traceId) || fallbackTrace;
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-Request-Id"] = newId();
    event.detail.headers["X-Trace-Id"] = traceId();
  });
})();
