// A "select all" checkbox (data-select-all="NAME") ticks or clears every checkbox named NAME
// in its form, and shows as mixed when only some are ticked.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.form) return;
  const form = box.form;
  const all = form.querySelector("input[data-select-all]");
  if (!all) return;
  const boxes = [...form.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`)];
  if (box === all) {
    boxes.forEach((b) => { b.checked = all.checked; });
  } else if (boxes.includes(box)) {
    const ticked = boxes.filter((b) => b.checked).length;
    all.checked = ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
  }
});
