;;; eglot_probe.el --- batch eglot round trip for tests/clients/test_emacs.py  -*- lexical-binding: t -*-
;; emacs --batch -q -l eglot_probe.el   (-q, not -Q: -Q skips Debian's site-start, which
;; puts elpa-eglot on the load path)
;; env LLMREF_PROBE_SPEC: a JSON file {file, root, cmd, mode, init_options, probes: [...]};
;; each probe is {name, method: "hover"|"completion"|"definition", find, line?, after?,
;; until?}: point goes on the first character of `find' (after it, with `after') on line
;; `line' (1-based), or on the first line containing it.  Hover probes are run twice: the raw
;; request, and eglot's eldoc function (what users see).  "definition" runs the user's
;; command, `xref-find-definitions' (M-.), and records where Emacs landed; with `until' the
;; raw request is first retried (up to 20 s) until its answer contains that text.  Results (JSON) go to $LLMREF_PROBE_OUT; exit code 0 = ran,
;; 1 = error (in the results' "error"), 2 = nowhere to write results.
(require 'json)
(require 'subr-x)
(defvar probe-out (getenv "LLMREF_PROBE_OUT"))
(unless probe-out (kill-emacs 2))
(defvar probe-t0 (float-time))
(defvar probe-result nil "Alist written as the JSON result.")
(defvar probe-probes nil)

(defun probe-ms (since) (round (* 1000 (- (float-time) since))))
(defun probe-set (key value) (push (cons key value) probe-result))

(defun probe-finish (code)
  (probe-set 'total_ms (probe-ms probe-t0))
  (probe-set 'probes (vconcat (nreverse probe-probes)))
  (let ((coding-system-for-write 'utf-8)
        (json-encoding-pretty-print nil))
    (write-region (json-encode probe-result) nil probe-out nil 'silent))
  (kill-emacs code))

(defun probe-goto (probe)
  "Move point as PROBE says; return the 1-based line."
  (let ((find (plist-get probe :find))
        (line (plist-get probe :line)))
    (goto-char (point-min))
    (if line
        (progn (forward-line (1- line))
               (unless (search-forward find (line-end-position) t)
                 (error "Line %d does not contain %s" line find)))
      (unless (search-forward find nil t) (error "No line contains %s" find)))
    (goto-char (if (eq t (plist-get probe :after)) (match-end 0) (match-beginning 0)))
    (line-number-at-pos)))

(defun probe-hover-value (hover)
  (let ((contents (plist-get hover :contents)))
    (cond ((null contents) nil)
          ((stringp contents) contents)
          (t (plist-get contents :value)))))

(defun probe-hover (probe out)
  (let ((server (eglot--current-server-or-lose))
        (started (float-time))
        (tries 0) hover value)
    ;; 1) the raw request; the index loads in the background: retry while the card says so
    (while (progn
             (setq tries (1+ tries)
                   hover (jsonrpc-request server :textDocument/hover
                                          (eglot--TextDocumentPositionParams))
                   value (probe-hover-value hover))
             (and value (string-match-p "Indexing the corpus" value)
                  (< (- (float-time) started) 20)))
      (sleep-for 0.2))
    (push (cons 'tries tries) out)
    (push (cons 'value value) out)
    (push (cons 'kind (let ((c (plist-get hover :contents)))
                        (and (consp c) (plist-get c :kind))))
          out)
    (push (cons 'range (plist-get hover :range)) out)
    ;; 2) eglot's eldoc function: the text a user sees in the echo area / eldoc buffer
    (let (got)
      (eglot-hover-eldoc-function (lambda (info &rest _) (setq got (list info))))
      (with-timeout (10 (error "Eldoc callback not called"))
        (while (not got) (accept-process-output nil 0.05)))
      (push (cons 'eldoc (and (car got) (substring-no-properties (car got)))) out))
    out))

(defun probe-complete (_probe out)
  (let* ((capf (eglot-completion-at-point))
         (beg (nth 0 capf)) (end (nth 1 capf)) (table (nth 2 capf))
         (prefix (buffer-substring-no-properties beg end))
         (labels (mapcar #'substring-no-properties (all-completions "" table)))
         ;; what the completion UI offers for the text eglot takes as typed
         (matches (mapcar #'substring-no-properties (all-completions prefix table))))
    (push (cons 'prefix prefix) out)
    (push (cons 'labels (vconcat labels)) out)
    (push (cons 'matches (vconcat matches)) out)
    out))

(defun probe-definition (probe out)
  (let ((server (eglot--current-server-or-lose))
        (until (plist-get probe :until))
        (origin (current-buffer))
        (started (float-time))
        (tries 0) locs)
    (while (progn
             (setq tries (1+ tries)
                   locs (jsonrpc-request server :textDocument/definition
                                         (eglot--TextDocumentPositionParams)))
             (and until
                  (not (string-match-p (regexp-quote until) (json-encode (or locs :null))))
                  (< (- (float-time) started) 20)))
      (sleep-for 0.3))
    (push (cons 'tries tries) out)
    (push (cons 'result locs) out)
    (let ((xref-prompt-for-identifier nil))
      (call-interactively #'xref-find-definitions))
    (push (cons 'landed
                (list (cons 'file (buffer-file-name))
                      (cons 'line (line-number-at-pos))
                      (cons 'text (buffer-substring-no-properties
                                   (line-beginning-position) (line-end-position)))
                      (cons 'readonly (if buffer-read-only t :json-false))))
          out)
    (switch-to-buffer origin)
    out))

(condition-case err
    (let* ((json-object-type 'plist) (json-array-type 'vector) ; as jsonrpc wants them
           (spec (json-read-file (or (getenv "LLMREF_PROBE_SPEC")
                                     (error "LLMREF_PROBE_SPEC not set"))))
           (mode (intern (plist-get spec :mode))))
      (require 'package)
      (package-initialize)                ; Debian's /usr/share/emacs/site-lisp/elpa
      (require 'eglot)
      (probe-set 'emacs emacs-version)
      (probe-set 'eglot (package-version-join (package-desc-version
                                               (cadr (assq 'eglot package-alist)))))
      (unless (fboundp mode)              ; e.g. markdown-mode is not installed: a stand-in
        (eval `(define-derived-mode ,mode text-mode ,(symbol-name mode))))
      (add-to-list 'eglot-server-programs
                   `(,mode . (,@(append (plist-get spec :cmd) nil)
                              :initializationOptions ,(plist-get spec :init_options))))
      ;; eglot pushes its workspace configuration right after start; with none, the server
      ;; would reset its options to the defaults (see docs/editors.md): send the same ones
      (setq-default eglot-workspace-configuration
                    (list :llmref (plist-get spec :init_options)))
      (setq eglot-sync-connect 15
            eglot-autoshutdown nil
            auto-mode-alist nil)          ; the spec says which mode
      (let ((default-directory (file-name-as-directory (plist-get spec :root))))
        (find-file (plist-get spec :file)))
      (funcall mode)
      (probe-set 'mode (symbol-name major-mode))
      (apply #'eglot (eglot--guess-contact))
      (with-timeout (15 (error "Eglot did not manage the buffer within 15s"))
        (while (not (eglot-managed-p)) (accept-process-output nil 0.05)))
      (probe-set 'language_id (eglot--language-id (eglot--current-server-or-lose)))
      (probe-set 'initialize_ms (probe-ms probe-t0))
      (seq-doseq (probe (plist-get spec :probes))
        (let* ((started (float-time))
               (line (probe-goto probe))
               (pos (eglot--TextDocumentPositionParams))
               (out (list (cons 'name (plist-get probe :name))
                          (cons 'position (plist-get pos :position))
                          (cons 'line line))))
          (setq out (pcase (plist-get probe :method)
                      ("hover" (probe-hover probe out))
                      ("completion" (probe-complete probe out))
                      ("definition" (probe-definition probe out))
                      (m (error "Unknown method %s" m))))
          (push (cons 'ms (probe-ms started)) out)
          (push out probe-probes)))
      (eglot-shutdown (eglot--current-server-or-lose))
      (probe-finish 0))
  (error (probe-set 'error (error-message-string err)) (probe-finish 1)))
