// The home page, live: the list follows /api/changes (Server-Sent Events).
// Without JavaScript the page is complete as served; with it, articles
// published meanwhile appear at the top, changed ones change and
// withdrawn ones go. Every text is set as text, never as HTML.
(function () {
  "use strict";
  var list = document.getElementById("articles");
  if (!list || !window.EventSource) { return; }
  var firstPage = list.dataset.live === "true";
  var since = list.dataset.since;
  var source = new EventSource("/api/changes" + (since ? "?since=" + encodeURIComponent(since) : ""));

  function item(id) {
    var items = list.children;
    for (var i = 0; i < items.length; i++) {
      if (items[i].dataset.id === id) { return items[i]; }
    }
    return null;
  }

  function render(a) {
    var li = document.createElement("li");
    li.dataset.id = a.id;
    li.dataset.version = String(a.version);
    var h = document.createElement("h2");
    var link = document.createElement("a");
    link.href = "/articles/" + encodeURIComponent(a.id) + "/" + encodeURIComponent(a.slug);
    link.textContent = a.title;
    h.appendChild(link);
    var meta = document.createElement("p");
    meta.className = "meta";
    meta.appendChild(document.createTextNode("by " + a.author_id + ", "));
    var time = document.createElement("time");
    time.dateTime = a.created_at;
    time.textContent = new Date(a.created_at).toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" });
    meta.appendChild(time);
    (a.tags || []).forEach(function (t) {
      var tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "#" + t;
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(tag);
    });
    li.appendChild(h);
    li.appendChild(meta);
    return li;
  }

  function remove(id) {
    var li = item(id);
    if (li) { li.remove(); }
  }

  function show(change, created) {
    var a = change.article;
    if (!a || a.status !== "published") { remove(change.id); return; }
    var old = item(a.id);
    if (old) {
      if (Number(old.dataset.version) >= a.version) { return; }
      list.replaceChild(render(a), old);
      return;
    }
    if (!firstPage || !created) { return; }
    var li = render(a);
    li.className = "new";
    list.insertBefore(li, list.firstChild);
    var empty = document.getElementById("empty");
    if (empty) { empty.remove(); }
  }

  ["created", "updated"].forEach(function (name) {
    source.addEventListener(name, function (e) { show(JSON.parse(e.data), name === "created"); });
  });
  ["deleted", "erased"].forEach(function (name) {
    source.addEventListener(name, function (e) { remove(JSON.parse(e.data).id); });
  });
})();
