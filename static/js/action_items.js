// Progressive: the reason field shows only when "Won't do" is chosen. Without JavaScript it is always shown.
document.querySelectorAll("form.action-item-form").forEach((form) => {
  const status = form.querySelector("[data-status]");
  const reason = form.querySelector("[data-wont-do-reason]");
  if (!status || !reason) return;
  const sync = () => {
    const wontDo = status.value === "wont_do";
    reason.hidden = !wontDo && !reason.querySelector(".is-invalid");
    reason.querySelector("input").required = wontDo;
  };
  status.addEventListener("change", sync);
  sync();
});
