;;; docs_check.el --- checks the eglot config from docs/editors.md  -*- lexical-binding: t -*-
;; emacs --batch -q -l docs_check.el: loads the config (a file named in the spec) as
;; init.el would, opens files (eglot-ensure starts the servers from the mode hooks), asks
;; for the card through eglot's eldoc function, then runs llmref.search.
;; env LLMREF_PROBE_SPEC: {config, files: [{file, find}], search}; results to $LLMREF_PROBE_OUT.
(require 'json)
(defvar check-out (getenv "LLMREF_PROBE_OUT"))
(unless check-out (kill-emacs 2))
(defvar check-result nil)
(defvar check-files nil)

(defun check-finish (code)
  (push (cons 'files (vconcat (nreverse check-files))) check-result)
  (let ((coding-system-for-write 'utf-8))
    (write-region (json-encode check-result) nil check-out nil 'silent))
  (kill-emacs code))

(defun check-eldoc ()
  "The card through eglot's eldoc function; retried while the index loads (up to 20 s)."
  (let ((deadline (+ (float-time) 20)) text)
    (while (progn
             (let (got)
               (eglot-hover-eldoc-function (lambda (info &rest _) (setq got (list info))))
               (with-timeout (10 (error "Eldoc callback not called"))
                 (while (not got) (accept-process-output nil 0.05)))
               (setq text (and (car got) (substring-no-properties (car got)))))
             (and text (string-match-p "Indexing the corpus" text)
                  (< (float-time) deadline)))
      (sleep-for 0.2))
    text))

(condition-case err
    (let* ((json-object-type 'plist) (json-array-type 'vector)
           (spec (json-read-file (getenv "LLMREF_PROBE_SPEC"))))
      (require 'package)
      (package-initialize)
      (unless (fboundp 'markdown-mode)    ; markdown-mode is not installed: a stand-in
        (define-derived-mode markdown-mode text-mode "Markdown")
        (add-to-list 'auto-mode-alist '("\\.md\\'" . markdown-mode)))
      (load (plist-get spec :config) nil t)
      (require 'eglot)
      (setq eglot-sync-connect 15)
      (seq-doseq (f (plist-get spec :files))
        (find-file (plist-get f :file))
        (run-hooks 'post-command-hook)    ; eglot-ensure starts servers after a command
        (with-timeout (15 (error "Eglot did not manage %s" (plist-get f :file)))
          (while (not (eglot-managed-p)) (accept-process-output nil 0.05)))
        (let ((server (eglot--current-server-or-lose)))
          (goto-char (point-min))
          (search-forward (plist-get f :find))
          (goto-char (match-beginning 0))
          (push `((file . ,(plist-get f :file))
                  (mode . ,(symbol-name major-mode))
                  (language_id . ,(eglot--language-id server))
                  (pid . ,(process-id (jsonrpc--process server)))
                  (eldoc . ,(check-eldoc)))
                check-files)))
      (push (cons 'search (jsonrpc-request (eglot--current-server-or-lose)
                                           :workspace/executeCommand
                                           `(:command "llmref.search"
                                             :arguments [,(plist-get spec :search)])))
            check-result)
      (check-finish 0))
  (error (push (cons 'error (error-message-string err)) check-result) (check-finish 1)))
