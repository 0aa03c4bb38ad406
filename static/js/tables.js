// On a phone each table row is laid out as a card (static/css/app.css); this names every cell after
// its column header so that card still says which value is which. Without JavaScript the cells are
// still all there, only unlabeled.
document.querySelectorAll("table.table").forEach(function (table) {
  var headers = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
    // A header only screen readers read (an actions column) names nothing on screen either.
    return th.querySelector(".visually-hidden") ? "" : th.textContent.trim();
  });
  if (!headers.length) return;
  table.querySelectorAll("tbody tr").forEach(function (row) {
    var column = 0;
    Array.prototype.forEach.call(row.children, function (cell) {
      if (!cell.hasAttribute("data-label") && !cell.hasAttribute("colspan")) {
        cell.setAttribute("data-label", headers[column] || "");
      }
      column += cell.colSpan || 1;
    });
  });
});
