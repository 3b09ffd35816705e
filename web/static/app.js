// Progressive enhancement only: every page works without this script.
// Adds a "copy" button beside each element with data-copy.
document.querySelectorAll("[data-copy]").forEach(function (el) {
  if (!navigator.clipboard) return;
  var b = document.createElement("button");
  b.type = "button";
  b.className = "copy-button";
  b.textContent = "copy";
  b.setAttribute("aria-label", "copy " + el.getAttribute("data-copy"));
  b.addEventListener("click", function () {
    navigator.clipboard.writeText(el.getAttribute("data-copy")).then(function () {
      b.textContent = "copied";
      setTimeout(function () { b.textContent = "copy"; }, 1500);
    });
  });
  el.appendChild(b);
});
