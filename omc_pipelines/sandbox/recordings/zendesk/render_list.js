(function () {
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }
  function link(cls, text, href, rel) {
    var a = el("a", cls, text);
    a.setAttribute("href", href);
    if (rel) a.setAttribute("rel", rel);
    return a;
  }
  function render() {
    var data = JSON.parse(document.getElementById("hc-list-data").textContent);
    var root = document.getElementById("article-tree");
    data.sections.forEach(function (s) {
      var section = el("section", "section");
      if (s.name) {
        var heading = el("h2", "section-tree-title");
        heading.appendChild(link(null, s.name, s.url));
        section.appendChild(heading);
      }
      var list = el("ul", "article-list");
      s.articles.forEach(function (article) {
        var item = el("li", "article-list-item" + (article.promoted ? " article-promoted" : ""));
        item.appendChild(link("article-list-link", article.title, article.url));
        list.appendChild(item);
      });
      section.appendChild(list);
      if (s.see_all) section.appendChild(link("see-all-articles", s.see_all.label, s.see_all.url));
      root.appendChild(section);
    });
    if (data.next) {
      var nav = el("nav", "pagination");
      var items = el("ul");
      var next = el("li", "pagination-next");
      next.appendChild(link(null, "Next \u203a", data.next, "next"));
      items.appendChild(next);
      nav.appendChild(items);
      root.appendChild(nav);
    }
  }
  document.addEventListener("DOMContentLoaded", function () { setTimeout(render, ${delay_ms}); });
})();
