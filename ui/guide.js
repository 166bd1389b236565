// The first-time WeCom authorization guide: text only, and a button to close it.
'use strict';

App.boot(() => {
  App.on('close', 'click', () => App.closeWindow());
  App.$('close').focus({ preventScroll: true });
});
