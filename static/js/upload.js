// Upload a recording to the API with a real progress bar (XMLHttpRequest reports upload
// progress; fetch does not). Errors from the server are shown as text, never as markup.

export function wireUpload(form) {
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const message = document.getElementById("upload-message");
  const maxBytes = Number(form.dataset.maxBytes);

  form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const file = form.querySelector('input[type="file"]').files[0];
    if (!file) return;
    if (maxBytes && file.size > maxBytes) {
      message.textContent = `This file is ${(file.size / 1024 ** 3).toFixed(1)} GB; the limit is ${(maxBytes / 1024 ** 3).toFixed(1)} GB.`;
      return;
    }
    const body = new FormData();
    body.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.url);
    xhr.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    xhr.upload.addEventListener("progress", (p) => {
      if (p.lengthComputable) { bar.hidden = false; bar.value = (100 * p.loaded) / p.total; }
    });
    xhr.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 202) {
        message.textContent = "Uploaded. Checking and analysing the recording…";
        setTimeout(() => location.reload(), 500);
      } else {
        bar.hidden = true;
        message.textContent = (data.error && data.error.message) || `Upload failed (HTTP ${xhr.status}).`;
      }
    });
    xhr.addEventListener("error", () => { message.textContent = "Network error: the upload did not complete."; });
    message.textContent = "Uploading…";
    xhr.send(body);
  });
}
