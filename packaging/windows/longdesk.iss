; Inno Setup 6 script for the Windows installer of Longdesk.
;
;   packaging\windows\build.ps1            (builds dist\longdesk\ first, then runs ISCC on this)
;   ISCC /DAppVersion=0.1.0 /DAccel=vulkan packaging\windows\longdesk.iss
;
; Installs the PyInstaller folder (dist\longdesk\: longdesk.exe for the command line,
; longdeskw.exe for the window, _internal\ with Python, Qt, llama.cpp and the default model's
; chunks), a Start menu entry, optionally a desktop icon and PATH entry, and offers Longdesk in
; Explorer's "Open with" for the formats it reads (never taking over a type's default app).
; Per-user by default (no administrator rights); "install for all users" asks for them.
; NOT RUN in this project's CI: written for Windows 10/11 x64 with Inno Setup 6.
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Accel
  #define Accel "vulkan"
#endif
#define SourceDir "..\..\dist\longdesk"

[Setup]
AppId={{5B0E2C4A-6F1D-4C53-9D2E-7A8B3F41C0D9}
AppName=Longdesk
AppVersion={#AppVersion}
AppVerName=Longdesk {#AppVersion} ({#Accel})
AppPublisher=Longdesk
DefaultDirName={autopf}\Longdesk
DefaultGroupName=Longdesk
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=Longdesk-{#AppVersion}-windows-x86_64-{#Accel}-setup
SetupIconFile=..\..\assets\icons\longdesk.ico
UninstallDisplayIcon={app}\longdeskw.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes
ChangesEnvironment=yes

[Tasks]
Name: "associate"; Description: "Offer Longdesk in ""Open with"" for books, documents and archives"
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; Flags: unchecked
Name: "addtopath"; Description: "Add the longdesk command to PATH"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Longdesk"; Filename: "{app}\longdeskw.exe"; Comment: "Read whole books, document sets and codebases with one model"
Name: "{autodesktop}\Longdesk"; Filename: "{app}\longdeskw.exe"; Tasks: desktopicon

[Registry]
; The application, for "Open with" (Applications\longdeskw.exe) and a ProgID for its documents.
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "Longdesk"; Flags: uninsdeletekey; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\longdeskw.exe,0"; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\longdeskw.exe"" ""%1"""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Longdesk.Document"; ValueType: string; ValueName: ""; ValueData: "Document for Longdesk"; Flags: uninsdeletekey; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Longdesk.Document\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\longdeskw.exe,0"; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Longdesk.Document\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\longdeskw.exe"" ""%1"""; Tasks: associate
; The types Longdesk reads (the Linux .desktop entry's MimeType and the macOS document types).
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".pdf"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".epub"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".mobi"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".azw"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".azw3"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".fb2"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".xps"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".oxps"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".cbz"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".html"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".htm"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".xhtml"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".md"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".markdown"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".txt"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".rst"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".ipynb"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".zip"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".tar"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\longdeskw.exe\SupportedTypes"; ValueType: string; ValueName: ".tgz"; ValueData: ""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.pdf\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.epub\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.mobi\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.azw\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.azw3\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.fb2\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.xps\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.oxps\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.cbz\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.html\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.htm\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.xhtml\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.md\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.markdown\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.txt\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.rst\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.ipynb\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.zip\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.tar\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.tgz\OpenWithProgids"; ValueType: string; ValueName: "Longdesk.Document"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
; The command line: longdesk.exe on the user's PATH.
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\longdeskw.exe"; Description: "{cm:LaunchProgram,Longdesk}"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Current: string;
begin
  if not RegQueryStringValue(HKCU, 'Environment', 'Path', Current) then
    Current := '';
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Current) + ';') = 0;
end;
