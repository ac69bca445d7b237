// 核销: the camera reads the shopper's QR code where the browser has BarcodeDetector (feature-detected;
// the scan button stays hidden elsewhere, and typing the code always works), and a confirm button
// is disabled once tapped (the server also redeems a form once, however often it is posted).
(function () {
  "use strict";
  for (const form of document.querySelectorAll("form.confirm-once")) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      setTimeout(() => { button.disabled = true; }, 0); // after the browser has taken the submission
    });
  }
  const scan = document.getElementById("scan");
  const video = document.getElementById("camera");
  const field = document.getElementById("f-code");
  if (!scan || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  scan.hidden = false;
  scan.addEventListener("click", async () => {
    let stream;
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (!formats.includes("qr_code")) { scan.hidden = true; return; }
      const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      for (;;) {
        const found = await detector.detect(video);
        if (found.length) {
          field.value = found[0].rawValue;
          field.form.submit();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } catch {
      field.focus(); // no camera or no permission: the code can be typed
    } finally {
      if (stream) for (const track of stream.getTracks()) track.stop();
      video.hidden = true;
    }
  });
})();
