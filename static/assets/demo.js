// The demo shop's buttons. Here rather than in onclick attributes, which the
// pages' Content-Security-Policy (script-src 'self') does not run.

document.addEventListener('click', (event) => {
  const button = event.target instanceof Element ? event.target.closest('[data-action]') : null;
  if (!button) return;
  if (button.dataset.action === 'shop') window.location.hash = 'shop';
  // The widget loads on its own; until it has, the button does nothing.
  if (button.dataset.action === 'open-chat') window.Switchboard?.open();
});
